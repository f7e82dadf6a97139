package embergo

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestJSLimitsAndDenials(t *testing.T) {
	nc, js := jsctx(t)
	name := uniq("LIM")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, MaxMsgs: 2, Discard: nats.DiscardNew, MaxMsgSize: 16, DenyDelete: true, DenyPurge: true})
	js.Publish(name+".a", []byte("1"))
	js.Publish(name+".a", []byte("2"))
	_, err := js.Publish(name+".a", []byte("3"))
	var apiErr *nats.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 || apiErr.Description != "maximum messages exceeded" {
		t.Fatalf("discard new: want 10077 maximum messages exceeded, got %v", err)
	}
	_, err = js.Publish(name+".b", bytes.Repeat([]byte("x"), 17))
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10054 || apiErr.Description != "message size exceeds maximum allowed" {
		t.Fatalf("max msg size: want 10054, got %v", err)
	}
	if err := js.DeleteMsg(name, 1); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10057 || apiErr.Description != "message delete not permitted" {
		t.Fatalf("deny delete: want 10057, got %v", err)
	}
	if err := js.PurgeStream(name); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10110 || apiErr.Description != "stream purge not permitted" {
		t.Fatalf("deny purge: want 10110, got %v", err)
	}
	// seal, then any write is refused
	si, _ := js.StreamInfo(name)
	cfg := si.Config
	cfg.Sealed = true
	si, err = js.UpdateStream(&cfg)
	must(t, err, "seal")
	if !si.Config.Sealed {
		t.Fatal("not sealed")
	}
	if _, err := js.Publish(name+".c", []byte("x")); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10109 {
		t.Fatalf("publish to sealed stream: want 10109, got %v", err)
	}
	// invalid configs
	if _, err := js.AddStream(&nats.StreamConfig{Name: "bad.name"}); !errors.Is(err, nats.ErrInvalidStreamName) {
		t.Fatalf("want ErrInvalidStreamName, got %v", err)
	}
	_, err = js.AddStream(&nats.StreamConfig{Name: uniq("OVL"), Subjects: []string{name + ".a"}})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10065 || apiErr.Description != "subjects overlap with an existing stream" {
		t.Fatalf("overlap: want 10065, got %v", err)
	}
	// subscribing to a subject no stream holds
	if _, err := js.SubscribeSync(uniq("nowhere")); !errors.Is(err, nats.ErrNoMatchingStream) {
		t.Fatalf("want ErrNoMatchingStream, got %v", err)
	}
	_ = nc
}

func TestJSDomainAndAPIPrefixContexts(t *testing.T) {
	nc := connect(t)
	js, err := nc.JetStream(nats.APIPrefix("$JS.API"))
	must(t, err, "api prefix")
	_, err = js.AccountInfo()
	must(t, err, "account info through prefix")
	name := uniq("CTX")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name}})
	ack, err := js.Publish(name, []byte("x"))
	must(t, err, "publish")
	if ack.Domain != "" {
		t.Fatalf("no domain configured, ack says %q", ack.Domain)
	}
}

func TestKVMoreOptions(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("kvm")
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: bucket, History: 3, Storage: nats.MemoryStorage, MaxValueSize: 128, Description: "d"})
	must(t, err, "create")
	t.Cleanup(func() { js.DeleteKeyValue(bucket) })
	if _, err := kv.Keys(); !errors.Is(err, nats.ErrNoKeysFound) {
		t.Fatalf("empty bucket: want ErrNoKeysFound, got %v", err)
	}
	for i := 0; i < 5; i++ {
		kv.Put("h", []byte(fmt.Sprint(i)))
	}
	h, err := kv.History("h")
	must(t, err, "history")
	if len(h) != 3 || string(h[0].Value()) != "2" {
		t.Fatalf("history limited to 3: %d", len(h))
	}
	if _, err := kv.Put("big", bytes.Repeat([]byte("x"), 129)); err == nil {
		t.Fatal("value over max_value_size accepted")
	}
	e, _ := kv.Get("h")
	if err := kv.Delete("h", nats.LastRevision(e.Revision()-1)); err == nil {
		t.Fatal("delete with stale revision accepted")
	}
	must(t, kv.Delete("h", nats.LastRevision(e.Revision())), "delete with revision")
	kv.Put("a.b", []byte("1"))
	w, err := kv.WatchAll(nats.IncludeHistory())
	must(t, err, "watch history")
	n := 0
	for e := range w.Updates() {
		if e == nil {
			break
		}
		n++
	}
	w.Stop()
	if n != 4 { // h: 2 puts + delete kept by history 3, plus a.b
		t.Fatalf("include history delivered %d", n)
	}
	w, err = kv.WatchAll(nats.IgnoreDeletes())
	must(t, err, "watch ignore deletes")
	var keys []string
	for e := range w.Updates() {
		if e == nil {
			break
		}
		keys = append(keys, e.Key())
	}
	w.Stop()
	if strings.Join(keys, ",") != "a.b" {
		t.Fatalf("ignore deletes: %v", keys)
	}
	w, err = kv.Watch("a.*", nats.MetaOnly())
	must(t, err, "watch meta only")
	e = <-w.Updates()
	if e == nil || e.Key() != "a.b" || len(e.Value()) != 0 {
		t.Fatalf("meta only entry %v", e)
	}
	w.Stop()
	st, err := kv.Status()
	must(t, err, "status")
	if st.Values() != 4 || st.BackingStore() != "JetStream" {
		t.Fatalf("status values %d store %s", st.Values(), st.BackingStore())
	}
	found := false
	// nats.go 1.22 yields the backing stream names ("KV_<bucket>") here
	for n := range js.KeyValueStoreNames() {
		if n == "KV_"+bucket {
			found = true
		}
	}
	if !found {
		t.Fatal("KeyValueStoreNames misses the bucket")
	}
	if _, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "bad.bucket"}); err == nil {
		t.Fatal("invalid bucket name accepted")
	}
}

func TestObjectStoreMore(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("objm")
	obs, err := js.CreateObjectStore(&nats.ObjectStoreConfig{Bucket: bucket, Description: "o"})
	must(t, err, "create")
	t.Cleanup(func() { js.DeleteObjectStore(bucket) })
	if _, err := obs.List(); !errors.Is(err, nats.ErrNoObjectsFound) {
		t.Fatalf("empty list: want ErrNoObjectsFound, got %v", err)
	}
	w, err := obs.Watch()
	must(t, err, "watch")
	defer w.Stop()
	if e := <-w.Updates(); e != nil {
		t.Fatal("want nil marker on empty store")
	}
	data := bytes.Repeat([]byte("abcdefgh"), 4000) // 32000 bytes in 1000-byte chunks
	info, err := obs.Put(&nats.ObjectMeta{Name: "c", Opts: &nats.ObjectMetaOptions{ChunkSize: 1000}}, bytes.NewReader(data))
	must(t, err, "put chunked")
	if info.Chunks != 32 {
		t.Fatalf("chunks %d", info.Chunks)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Name != "c" {
			t.Fatalf("watch update %v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no watch update")
	}
	// replace: the old chunks go away
	_, err = obs.PutBytes("c", []byte("small now"))
	must(t, err, "replace")
	got, _ := obs.GetString("c")
	if got != "small now" {
		t.Fatalf("replaced %q", got)
	}
	si, _ := js.StreamInfo("OBJ_" + bucket)
	if si.State.Msgs != 2 {
		t.Fatalf("stream keeps %d messages after replace (want meta + 1 chunk)", si.State.Msgs)
	}
	// empty object
	_, err = obs.PutBytes("empty", nil)
	must(t, err, "put empty")
	b, err := obs.GetBytes("empty")
	must(t, err, "get empty")
	if len(b) != 0 {
		t.Fatal("empty object not empty")
	}
	must(t, obs.UpdateMeta("c", &nats.ObjectMeta{Name: "c2", Description: "renamed"}), "update meta")
	i2, err := obs.GetInfo("c2")
	must(t, err, "info renamed")
	if i2.Description != "renamed" {
		t.Fatalf("description %q", i2.Description)
	}
	if _, err := obs.GetInfo("c"); !errors.Is(err, nats.ErrObjectNotFound) {
		t.Fatalf("old name: want ErrObjectNotFound, got %v", err)
	}
	must(t, obs.Delete("empty"), "delete")
	all, err := obs.List(nats.ListObjectsShowDeleted())
	must(t, err, "list deleted")
	if len(all) != 2 {
		t.Fatalf("list with deleted %d", len(all))
	}
	di, err := obs.GetInfo("empty", nats.GetObjectInfoShowDeleted())
	must(t, err, "info deleted")
	if !di.Deleted {
		t.Fatal("not marked deleted")
	}
	must(t, obs.Seal(), "seal")
	st, _ := obs.Status()
	if !st.Sealed() {
		t.Fatal("not sealed")
	}
	if _, err := obs.PutString("x", "y"); err == nil {
		t.Fatal("put into sealed store accepted")
	}
}
