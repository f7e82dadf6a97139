package embergo

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestJetStreamDisabled: a server without -js gives the Go client ErrJetStreamNotEnabled.
func TestJetStreamDisabled(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0, false)
	must(t, err, "start server without JetStream")
	defer srv.stop()
	nc, err := nats.Connect(srv.url)
	must(t, err, "connect")
	defer nc.Close()
	js, _ := nc.JetStream(nats.MaxWait(2 * time.Second))
	_, err = js.AccountInfo()
	if !errors.Is(err, nats.ErrJetStreamNotEnabled) {
		t.Fatalf("want ErrJetStreamNotEnabled, got %v", err)
	}
}

// TestRestartKeepsStateAndClientsReconnect: kill -9 the server with a file stream, a
// durable pull consumer with some messages acked, and a KV bucket; restart it on the same
// port; the same client connection reconnects by itself and finds everything acknowledged.
func TestRestartKeepsStateAndClientsReconnect(t *testing.T) {
	dir := t.TempDir()
	srv, err := startServer(dir, 0, true)
	must(t, err, "start")
	defer func() { srv.kill() }()
	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(srv.url, nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	must(t, err, "connect")
	defer nc.Close()
	js, _ := nc.JetStream(nats.MaxWait(3 * time.Second))
	_, err = js.AddStream(&nats.StreamConfig{Name: "DUR", Subjects: []string{"dur.>"}, Storage: nats.FileStorage})
	must(t, err, "add stream")
	for i := 0; i < 20; i++ {
		_, err := js.Publish("dur.x", []byte(fmt.Sprint(i)), nats.MsgId(fmt.Sprint("m", i)))
		must(t, err, "publish")
	}
	sub, err := js.PullSubscribe("dur.x", "keeper")
	must(t, err, "pull")
	msgs, err := sub.Fetch(5, nats.MaxWait(2*time.Second))
	must(t, err, "fetch")
	for _, m := range msgs {
		must(t, m.AckSync(), "ack")
	}
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "durkv", Storage: nats.FileStorage})
	must(t, err, "kv")
	_, err = kv.Put("k", []byte("v"))
	must(t, err, "kv put")

	srv.kill()
	srv, err = startServer(dir, srv.port, true)
	must(t, err, "restart")
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not reconnect")
	}
	si, err := js.StreamInfo("DUR")
	must(t, err, "info after restart")
	if si.State.Msgs != 20 || si.State.LastSeq != 20 {
		t.Fatalf("after restart %+v", si.State)
	}
	// the dedupe window survives the restart
	ack, err := js.Publish("dur.x", []byte("19"), nats.MsgId("m19"))
	must(t, err, "republish")
	if !ack.Duplicate || ack.Sequence != 20 {
		t.Fatalf("dedupe after restart: %+v", ack)
	}
	// Consumer acks are at-least-once across a kill -9 on both servers: the state is
	// written behind the acks (nats-server 2.9 loses the ack floor here too), so acked
	// messages may come again, but no unacknowledged message may be skipped.
	ci, err := js.ConsumerInfo("DUR", "keeper")
	must(t, err, "consumer after restart")
	if ci.AckFloor.Stream > 5 || ci.NumPending < 15 {
		t.Fatalf("consumer after restart floor %d pending %d", ci.AckFloor.Stream, ci.NumPending)
	}
	// the existing pull subscription keeps working on the reconnected connection
	msgs, err = sub.Fetch(1, nats.MaxWait(3*time.Second))
	must(t, err, "fetch after restart")
	if d := string(msgs[0].Data); d != "5" && d != "0" {
		t.Fatalf("next after restart %q", d)
	}
	e, err := kv.Get("k")
	must(t, err, "kv get after restart")
	if string(e.Value()) != "v" {
		t.Fatalf("kv after restart %q", e.Value())
	}
}
