package embergo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestJSConsumerLimitsAndCleanup(t *testing.T) {
	nc, js := jsctx(t)
	name := uniq("CLC")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 10; i++ {
		js.Publish(name+".x", []byte(fmt.Sprint(i)))
	}
	// max_ack_pending bounds what a push consumer hands out before acks
	sub, err := js.SubscribeSync(name+".x", nats.Durable("map"), nats.MaxAckPending(3), nats.ManualAck())
	must(t, err, "subscribe")
	var held []*nats.Msg
	for i := 0; i < 3; i++ {
		m, err := sub.NextMsg(3 * time.Second)
		must(t, err, "next")
		held = append(held, m)
	}
	if _, err := sub.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatal("delivered beyond max_ack_pending")
	}
	held[0].AckSync()
	m, err := sub.NextMsg(3 * time.Second)
	must(t, err, "next after ack")
	if string(m.Data) != "3" {
		t.Fatalf("after ack got %q", m.Data)
	}
	sub.Unsubscribe()
	// an ephemeral consumer with an inactive threshold is removed after it
	ci, err := js.AddConsumer(name, &nats.ConsumerConfig{AckPolicy: nats.AckExplicitPolicy, InactiveThreshold: 300 * time.Millisecond})
	must(t, err, "ephemeral")
	deadline := time.Now().Add(6 * time.Second)
	for {
		_, err := js.ConsumerInfo(name, ci.Name)
		if errors.Is(err, nats.ErrConsumerNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inactive ephemeral not removed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// backoff drives redelivery timing; only the count is checked
	_, err = js.AddConsumer(name, &nats.ConsumerConfig{Durable: "bo", AckPolicy: nats.AckExplicitPolicy,
		BackOff: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, MaxDeliver: 3, DeliverPolicy: nats.DeliverLastPolicy})
	must(t, err, "backoff consumer")
	ps, err := js.PullSubscribe(name+".x", "bo", nats.Bind(name, "bo"))
	must(t, err, "bind")
	n := 0
	end := time.Now().Add(5 * time.Second)
	for n < 3 && time.Now().Before(end) {
		if ms, err := ps.Fetch(1, nats.MaxWait(500*time.Millisecond)); err == nil {
			n += len(ms)
		}
	}
	if n != 3 {
		t.Fatalf("backoff deliveries %d, want 3", n)
	}
	// fetch bounded by a context instead of MaxWait
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ps2, err := js.PullSubscribe(name+".x", "ctx")
	must(t, err, "pull ctx")
	ms, err := ps2.Fetch(4, nats.Context(ctx))
	must(t, err, "fetch with context")
	if len(ms) != 4 {
		t.Fatalf("fetch with context %d", len(ms))
	}
	// several concurrent pull requests are served together
	res := make(chan int, 3)
	for i := 0; i < 3; i++ {
		go func() {
			ms, _ := ps2.Fetch(2, nats.MaxWait(2*time.Second))
			res <- len(ms)
		}()
	}
	total := 0
	for i := 0; i < 3; i++ {
		total += <-res
	}
	if total != 6 {
		t.Fatalf("concurrent fetches got %d, want 6", total)
	}
	_ = nc
}

func TestJSBindToPushConsumer(t *testing.T) {
	nc, js := jsctx(t)
	name := uniq("BPC")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	inbox := nats.NewInbox()
	_, err := js.AddConsumer(name, &nats.ConsumerConfig{Durable: "pc", DeliverSubject: inbox, AckPolicy: nats.AckExplicitPolicy})
	must(t, err, "add push consumer")
	sub, err := js.SubscribeSync("", nats.Bind(name, "pc"))
	must(t, err, "bind")
	js.Publish(name+".y", []byte("hi"))
	m, err := sub.NextMsg(3 * time.Second)
	must(t, err, "next")
	md, err := m.Metadata()
	must(t, err, "metadata")
	if md.Stream != name || md.Consumer != "pc" || md.Sequence.Stream != 1 {
		t.Fatalf("metadata %+v", md)
	}
	must(t, m.AckSync(), "ack")
	// a second bind to a push consumer that is already bound is refused by the client
	if _, err := js.SubscribeSync("", nats.Bind(name, "pc")); err == nil {
		t.Fatal("second bind accepted")
	}
	// raw core subscription on the deliver subject also sees the messages
	_ = nc
}

func TestKVEdgeCases(t *testing.T) {
	_, js := jsctx(t)
	bucket := uniq("kve")
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: bucket, History: 2})
	must(t, err, "create")
	t.Cleanup(func() { js.DeleteKeyValue(bucket) })
	r, _ := kv.Put("k", []byte("1"))
	must(t, kv.Delete("k"), "delete")
	e, err := kv.Get("k")
	if !errors.Is(err, nats.ErrKeyNotFound) || e != nil {
		t.Fatalf("deleted get %v %v", e, err)
	}
	// update with the revision of the delete marker works; the old revision does not
	if _, err := kv.Update("k", []byte("2"), r); err == nil {
		t.Fatal("update with pre-delete revision accepted")
	}
	h, _ := kv.History("k")
	r2, err := kv.Update("k", []byte("2"), h[len(h)-1].Revision())
	must(t, err, "update over delete marker")
	w, err := kv.Watch("k")
	must(t, err, "watch key")
	defer w.Stop()
	e = <-w.Updates()
	if e == nil || e.Revision() != r2 {
		t.Fatalf("watch initial %v", e)
	}
	if e := <-w.Updates(); e != nil {
		t.Fatal("want nil marker")
	}
	must(t, kv.Purge("k"), "purge")
	select {
	case e := <-w.Updates():
		if e == nil || e.Operation() != nats.KeyValuePurge {
			t.Fatalf("watch purge %v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no purge on watch")
	}
	// invalid keys are refused by the client before reaching the server
	if _, err := kv.Put("bad key", []byte("x")); !errors.Is(err, nats.ErrInvalidKey) {
		t.Fatalf("want ErrInvalidKey, got %v", err)
	}
	if _, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: bucket, History: 2}); err != nil {
		t.Fatalf("create existing identical bucket: %v", err)
	}
}
