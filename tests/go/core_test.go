package embergo

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestCorePubSub(t *testing.T) {
	nc := connect(t)
	sub, err := nc.SubscribeSync("core.>")
	must(t, err, "subscribe")
	must(t, nc.Publish("core.a.b", []byte("hello")), "publish")
	m, err := sub.NextMsg(3 * time.Second)
	must(t, err, "next")
	if m.Subject != "core.a.b" || string(m.Data) != "hello" {
		t.Fatalf("got %q %q", m.Subject, m.Data)
	}
	// wildcard * does not match two tokens
	sub2, _ := nc.SubscribeSync("w.*")
	nc.Publish("w.x.y", []byte("no"))
	nc.Publish("w.x", []byte("yes"))
	m, err = sub2.NextMsg(3 * time.Second)
	must(t, err, "next w")
	if string(m.Data) != "yes" {
		t.Fatalf("got %q", m.Data)
	}
	// unsubscribe after 2 (auto-unsubscribe)
	sub3, _ := nc.SubscribeSync("au")
	sub3.AutoUnsubscribe(2)
	for i := 0; i < 4; i++ {
		nc.Publish("au", []byte("x"))
	}
	nc.Flush()
	n := 0
	for {
		if _, err := sub3.NextMsg(300 * time.Millisecond); err != nil {
			break
		}
		n++
	}
	if n != 2 {
		t.Fatalf("auto-unsubscribe delivered %d, want 2", n)
	}
}

func TestCoreQueueGroups(t *testing.T) {
	nc := connect(t)
	var a, b int32
	var wg sync.WaitGroup
	wg.Add(100)
	_, err := nc.QueueSubscribe("q.work", "workers", func(m *nats.Msg) { atomic.AddInt32(&a, 1); wg.Done() })
	must(t, err, "qsub a")
	nc2 := connect(t)
	_, err = nc2.QueueSubscribe("q.work", "workers", func(m *nats.Msg) { atomic.AddInt32(&b, 1); wg.Done() })
	must(t, err, "qsub b")
	nc2.Flush()
	for i := 0; i < 100; i++ {
		nc.Publish("q.work", []byte("x"))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("only %d+%d of 100 delivered", a, b)
	}
	time.Sleep(100 * time.Millisecond)
	if a+b != 100 {
		t.Fatalf("delivered %d, want exactly 100", a+b)
	}
}

func TestCoreRequestReply(t *testing.T) {
	nc := connect(t)
	_, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("re:"), m.Data...)) })
	must(t, err, "sub")
	nc.Flush()
	for i := 0; i < 5; i++ {
		r, err := nc.Request("svc.echo", []byte("ping"), 3*time.Second)
		must(t, err, "request")
		if string(r.Data) != "re:ping" {
			t.Fatalf("got %q", r.Data)
		}
	}
	// old-style request (one inbox subscription per request)
	ncOld := connect(t, nats.UseOldRequestStyle())
	r, err := ncOld.Request("svc.echo", []byte("old"), 3*time.Second)
	must(t, err, "old request")
	if string(r.Data) != "re:old" {
		t.Fatalf("got %q", r.Data)
	}
}

func TestCoreHeaders(t *testing.T) {
	nc := connect(t)
	if !nc.HeadersSupported() {
		t.Fatal("server does not advertise headers")
	}
	sub, _ := nc.SubscribeSync("hdr")
	m := nats.NewMsg("hdr")
	m.Header.Set("X-One", "1")
	m.Header.Add("X-Multi", "a")
	m.Header.Add("X-Multi", "b")
	m.Data = []byte("body")
	must(t, nc.PublishMsg(m), "publish")
	got, err := sub.NextMsg(3 * time.Second)
	must(t, err, "next")
	if got.Header.Get("X-One") != "1" || len(got.Header.Values("X-Multi")) != 2 || string(got.Data) != "body" {
		t.Fatalf("got header %v data %q", got.Header, got.Data)
	}
	// header-only message, empty body
	m2 := nats.NewMsg("hdr")
	m2.Header.Set("K", "v")
	nc.PublishMsg(m2)
	got, err = sub.NextMsg(3 * time.Second)
	must(t, err, "next 2")
	if got.Header.Get("K") != "v" || len(got.Data) != 0 {
		t.Fatalf("got %v %q", got.Header, got.Data)
	}
}

func TestCoreNoResponders(t *testing.T) {
	nc := connect(t)
	_, err := nc.Request("nobody.home", []byte("x"), 3*time.Second)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("want ErrNoResponders, got %v", err)
	}
}

func TestCoreDrain(t *testing.T) {
	nc := connect(t)
	pub := connect(t)
	var got int32
	_, err := nc.Subscribe("drain.x", func(m *nats.Msg) {
		time.Sleep(time.Millisecond)
		atomic.AddInt32(&got, 1)
	})
	must(t, err, "sub")
	nc.Flush()
	for i := 0; i < 50; i++ {
		pub.Publish("drain.x", []byte("x"))
	}
	pub.Flush()
	// make sure the messages reached nc before draining
	time.Sleep(200 * time.Millisecond)
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	must(t, nc.Drain(), "drain")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not close the connection")
	}
	if atomic.LoadInt32(&got) != 50 {
		t.Fatalf("drain processed %d of 50", got)
	}
}
