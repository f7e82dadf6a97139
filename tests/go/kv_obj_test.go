package embergo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestKVBasics(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("kvb")
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: bucket, History: 5})
	must(t, err, "create bucket")
	t.Cleanup(func() { js.DeleteKeyValue(bucket) })
	r1, err := kv.Put("a", []byte("1"))
	must(t, err, "put")
	e, err := kv.Get("a")
	must(t, err, "get")
	if string(e.Value()) != "1" || e.Revision() != r1 || e.Operation() != nats.KeyValuePut {
		t.Fatalf("entry %q rev %d", e.Value(), e.Revision())
	}
	r2, err := kv.Update("a", []byte("2"), r1)
	must(t, err, "update")
	if _, err := kv.Update("a", []byte("3"), r1); !errors.Is(err, nats.ErrKeyExists) {
		t.Fatalf("stale update: want ErrKeyExists, got %v", err)
	}
	if _, err := kv.Create("a", []byte("x")); !errors.Is(err, nats.ErrKeyExists) {
		t.Fatalf("create existing: want ErrKeyExists, got %v", err)
	}
	_, err = kv.Create("b", []byte("b1"))
	must(t, err, "create new")
	if _, err := kv.Get("nope"); !errors.Is(err, nats.ErrKeyNotFound) {
		t.Fatalf("want ErrKeyNotFound, got %v", err)
	}
	e, _ = kv.GetRevision("a", r1)
	if e == nil || string(e.Value()) != "1" {
		t.Fatal("get revision")
	}
	keys, err := kv.Keys()
	must(t, err, "keys")
	sort.Strings(keys)
	if len(keys) != 2 || keys[0] != "a" || keys[1] != "b" {
		t.Fatalf("keys %v", keys)
	}
	must(t, kv.Delete("b"), "delete")
	if _, err := kv.Get("b"); !errors.Is(err, nats.ErrKeyNotFound) {
		t.Fatalf("deleted key: want ErrKeyNotFound, got %v", err)
	}
	// create after delete is allowed
	_, err = kv.Create("b", []byte("b2"))
	must(t, err, "create after delete")
	h, err := kv.History("a")
	must(t, err, "history")
	if len(h) != 2 || h[1].Revision() != r2 {
		t.Fatalf("history %d", len(h))
	}
	must(t, kv.Purge("a"), "purge")
	h, err = kv.History("a")
	must(t, err, "history after purge")
	if len(h) != 1 || h[0].Operation() != nats.KeyValuePurge {
		t.Fatalf("history after purge %d", len(h))
	}
	st, err := kv.Status()
	must(t, err, "status")
	if st.Bucket() != bucket || st.History() != 5 {
		t.Fatalf("status %s %d", st.Bucket(), st.History())
	}
	must(t, kv.PurgeDeletes(nats.DeleteMarkersOlderThan(-1)), "purge deletes")
	keys, _ = kv.Keys()
	if len(keys) != 1 || keys[0] != "b" {
		t.Fatalf("keys after purge deletes %v", keys)
	}
	// bind to the existing bucket by name
	kv2, err := js.KeyValue(bucket)
	must(t, err, "bind")
	e, err = kv2.Get("b")
	must(t, err, "get via bind")
	if string(e.Value()) != "b2" {
		t.Fatalf("got %q", e.Value())
	}
	if _, err := js.KeyValue(uniq("missing")); !errors.Is(err, nats.ErrBucketNotFound) {
		t.Fatalf("want ErrBucketNotFound, got %v", err)
	}
}

func TestKVWatch(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("kvw")
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: bucket})
	must(t, err, "create")
	t.Cleanup(func() { js.DeleteKeyValue(bucket) })
	kv.Put("k1", []byte("v1"))
	kv.Put("k2", []byte("v2"))
	w, err := kv.WatchAll()
	must(t, err, "watch")
	defer w.Stop()
	next := func() nats.KeyValueEntry {
		select {
		case e := <-w.Updates():
			return e
		case <-time.After(3 * time.Second):
			t.Fatal("watch timed out")
		}
		return nil
	}
	got := map[string]string{}
	for i := 0; i < 2; i++ {
		e := next()
		if e == nil {
			t.Fatal("nil before initial values")
		}
		got[e.Key()] = string(e.Value())
	}
	if got["k1"] != "v1" || got["k2"] != "v2" {
		t.Fatalf("initial %v", got)
	}
	if e := next(); e != nil {
		t.Fatalf("want nil marker after initial values, got %v", e.Key())
	}
	kv.Put("k3", []byte("v3"))
	e := next()
	if e.Key() != "k3" || string(e.Value()) != "v3" {
		t.Fatalf("update %s", e.Key())
	}
	kv.Delete("k1")
	e = next()
	if e.Key() != "k1" || e.Operation() != nats.KeyValueDelete {
		t.Fatalf("delete op %s %v", e.Key(), e.Operation())
	}
	// filtered watch on an empty match gets the nil marker straight away
	w2, err := kv.Watch("none.*")
	must(t, err, "watch none")
	defer w2.Stop()
	select {
	case e := <-w2.Updates():
		if e != nil {
			t.Fatal("want nil marker")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no initial marker")
	}
}

func TestKVTTL(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("kvt")
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: bucket, TTL: time.Second})
	must(t, err, "create")
	t.Cleanup(func() { js.DeleteKeyValue(bucket) })
	kv.Put("k", []byte("v"))
	st, _ := kv.Status()
	if st.TTL() != time.Second {
		t.Fatalf("ttl %v", st.TTL())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := kv.Get("k")
		if errors.Is(err, nats.ErrKeyNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key did not expire: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestObjectStore(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("obj")
	obs, err := js.CreateObjectStore(&nats.ObjectStoreConfig{Bucket: bucket})
	must(t, err, "create")
	t.Cleanup(func() { js.DeleteObjectStore(bucket) })
	big := make([]byte, 1<<20+12345) // several 128 KiB chunks
	rand.Read(big)
	info, err := obs.PutBytes("big.bin", big)
	must(t, err, "put")
	if info.Size != uint64(len(big)) || info.Chunks < 8 {
		t.Fatalf("info size %d chunks %d", info.Size, info.Chunks)
	}
	got, err := obs.GetBytes("big.bin")
	must(t, err, "get")
	if !bytes.Equal(got, big) {
		t.Fatal("content differs")
	}
	gi, err := obs.GetInfo("big.bin")
	must(t, err, "info")
	if gi.Digest != info.Digest || gi.NUID != info.NUID {
		t.Fatalf("info %+v", gi)
	}
	_, err = obs.PutString("small", "hello")
	must(t, err, "put small")
	s, err := obs.GetString("small")
	must(t, err, "get small")
	if s != "hello" {
		t.Fatalf("got %q", s)
	}
	// links
	li, err := obs.AddLink("alias", gi)
	must(t, err, "add link")
	if li.Opts == nil || li.Opts.Link == nil || li.Opts.Link.Name != "big.bin" {
		t.Fatalf("link %+v", li)
	}
	got, err = obs.GetBytes("alias")
	must(t, err, "get through link")
	if !bytes.Equal(got, big) {
		t.Fatal("link content differs")
	}
	list, err := obs.List()
	must(t, err, "list")
	if len(list) != 3 {
		t.Fatalf("list %d", len(list))
	}
	must(t, obs.Delete("small"), "delete")
	if _, err := obs.Get("small"); !errors.Is(err, nats.ErrObjectNotFound) {
		t.Fatalf("want ErrObjectNotFound, got %v", err)
	}
	st, err := obs.Status()
	must(t, err, "status")
	if st.Bucket() != bucket {
		t.Fatalf("status bucket %s", st.Bucket())
	}
}
