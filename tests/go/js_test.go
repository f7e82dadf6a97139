package embergo

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func addStream(t *testing.T, js nats.JetStreamContext, cfg *nats.StreamConfig) *nats.StreamInfo {
	t.Helper()
	si, err := js.AddStream(cfg)
	must(t, err, "add stream "+cfg.Name)
	t.Cleanup(func() { js.DeleteStream(cfg.Name) })
	return si
}

func TestJSStreamManagement(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("MGMT")
	si := addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: nats.FileStorage})
	if si.Config.Name != name || si.Config.Retention != nats.LimitsPolicy || si.Config.MaxMsgs != -1 || si.Config.Duplicates != 2*time.Minute {
		t.Fatalf("config defaults: %+v", si.Config)
	}
	// identical config again is fine; a different one is ErrStreamNameAlreadyInUse
	_, err := js.AddStream(&nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: nats.FileStorage})
	must(t, err, "idempotent add")
	_, err = js.AddStream(&nats.StreamConfig{Name: name, Subjects: []string{name + ".other"}})
	if !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
		t.Fatalf("want ErrStreamNameAlreadyInUse, got %v", err)
	}
	for i := 0; i < 5; i++ {
		_, err := js.Publish(fmt.Sprintf("%s.%d", name, i%2), []byte("x"))
		must(t, err, "publish")
	}
	si, err = js.StreamInfo(name)
	must(t, err, "info")
	if si.State.Msgs != 5 || si.State.LastSeq != 5 || si.State.NumSubjects != 2 {
		t.Fatalf("state %+v", si.State)
	}
	si, err = js.UpdateStream(&nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: nats.FileStorage, MaxMsgs: 3})
	must(t, err, "update")
	if si.Config.MaxMsgs != 3 || si.State.Msgs != 3 {
		t.Fatalf("after update %+v %+v", si.Config.MaxMsgs, si.State)
	}
	// names / list
	found := false
	for n := range js.StreamNames() {
		if n == name {
			found = true
		}
	}
	if !found {
		t.Fatal("StreamNames misses the stream")
	}
	// get/delete message
	rm, err := js.GetMsg(name, 5)
	must(t, err, "get msg")
	if rm.Sequence != 5 {
		t.Fatalf("seq %d", rm.Sequence)
	}
	must(t, js.DeleteMsg(name, 5), "delete msg")
	if _, err := js.GetMsg(name, 5); !errors.Is(err, nats.ErrMsgNotFound) {
		t.Fatalf("want ErrMsgNotFound, got %v", err)
	}
	lm, err := js.GetLastMsg(name, name+".1")
	must(t, err, "last msg")
	if lm.Subject != name+".1" || lm.Sequence != 4 {
		t.Fatalf("last msg %s %d", lm.Subject, lm.Sequence)
	}
	must(t, js.PurgeStream(name), "purge")
	si, _ = js.StreamInfo(name)
	if si.State.Msgs != 0 || si.State.FirstSeq != 6 {
		t.Fatalf("after purge %+v", si.State)
	}
	must(t, js.DeleteStream(name), "delete")
	if _, err := js.StreamInfo(name); !errors.Is(err, nats.ErrStreamNotFound) {
		t.Fatalf("want ErrStreamNotFound, got %v", err)
	}
	if err := js.DeleteStream(name); !errors.Is(err, nats.ErrStreamNotFound) {
		t.Fatalf("delete again: want ErrStreamNotFound, got %v", err)
	}
}

func TestJSPublishAckDedupeExpect(t *testing.T) {
	nc, js := jsctx(t)
	name := uniq("PUB")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: nats.MemoryStorage})
	ack, err := js.Publish(name+".a", []byte("1"), nats.MsgId("id-1"))
	must(t, err, "publish")
	if ack.Stream != name || ack.Sequence != 1 || ack.Duplicate {
		t.Fatalf("ack %+v", ack)
	}
	ack, err = js.Publish(name+".a", []byte("1"), nats.MsgId("id-1"))
	must(t, err, "publish dup")
	if ack.Sequence != 1 || !ack.Duplicate {
		t.Fatalf("dup ack %+v", ack)
	}
	_, err = js.Publish(name+".a", []byte("2"), nats.ExpectLastSequence(7))
	var apiErr *nats.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != nats.JSErrCodeStreamWrongLastSequence || apiErr.Code != 400 {
		t.Fatalf("want APIError 10071, got %v", err)
	}
	if apiErr.Description != "wrong last sequence: 1" {
		t.Fatalf("description %q", apiErr.Description)
	}
	_, err = js.Publish(name+".a", []byte("2"), nats.ExpectLastSequence(1))
	must(t, err, "expected last seq ok")
	_, err = js.Publish(name+".b", []byte("3"), nats.ExpectLastSequencePerSubject(0))
	must(t, err, "expected last subj seq 0")
	_, err = js.Publish(name+".b", []byte("3"), nats.ExpectLastSequencePerSubject(0))
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != nats.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("want 10071 for subject seq, got %v", err)
	}
	_, err = js.Publish(name+".b", []byte("4"), nats.ExpectStream("NOPE"))
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10060 {
		t.Fatalf("want stream-not-match, got %v", err)
	}
	_, err = js.Publish(name+".b", []byte("5"), nats.ExpectLastMsgId("id-1"))
	if err != nil {
		// last msg id is the last message's id (none after the first), so mismatch is expected
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10070 {
			t.Fatalf("want wrong last msg id, got %v", err)
		}
	}
	// no stream for the subject
	_, err = js.Publish(uniq("nostream"), []byte("x"))
	if !errors.Is(err, nats.ErrNoStreamResponse) {
		t.Fatalf("want ErrNoStreamResponse, got %v", err)
	}
	// async publish
	for i := 0; i < 200; i++ {
		_, err := js.PublishAsync(name+".async", []byte("x"))
		must(t, err, "publish async")
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("async acks did not complete")
	}
	si, _ := js.StreamInfo(name)
	if si.State.Msgs < 203 {
		t.Fatalf("msgs %d", si.State.Msgs)
	}
	_ = nc
}

func TestJSPullFetch(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("PULL")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 10; i++ {
		js.Publish(name+".x", []byte(fmt.Sprint(i)))
	}
	sub, err := js.PullSubscribe(name+".x", "puller", nats.BindStream(name))
	must(t, err, "pull subscribe")
	msgs, err := sub.Fetch(4, nats.MaxWait(3*time.Second))
	must(t, err, "fetch")
	if len(msgs) != 4 || string(msgs[0].Data) != "0" {
		t.Fatalf("fetched %d", len(msgs))
	}
	for _, m := range msgs {
		must(t, m.AckSync(), "ack sync")
	}
	md, _ := msgs[3].Metadata()
	if md.Sequence.Stream != 4 || md.NumPending != 6 || md.NumDelivered != 1 {
		t.Fatalf("metadata %+v", md)
	}
	ci, err := sub.ConsumerInfo()
	must(t, err, "consumer info")
	if ci.NumPending != 6 || ci.NumAckPending != 0 || ci.AckFloor.Stream != 4 {
		t.Fatalf("consumer info pending %d ackpending %d floor %+v", ci.NumPending, ci.NumAckPending, ci.AckFloor)
	}
	msgs, err = sub.Fetch(100, nats.MaxWait(time.Second))
	must(t, err, "fetch rest")
	if len(msgs) != 6 {
		t.Fatalf("fetched %d, want 6", len(msgs))
	}
	// Nak redelivers, Term does not, InProgress keeps it
	must(t, msgs[0].Nak(), "nak")
	must(t, msgs[1].Term(), "term")
	must(t, msgs[2].InProgress(), "wpi")
	for _, m := range msgs[2:] {
		m.AckSync()
	}
	re, err := sub.Fetch(5, nats.MaxWait(2*time.Second))
	must(t, err, "fetch redelivered")
	if len(re) != 1 || string(re[0].Data) != "4" {
		t.Fatalf("redelivered %d", len(re))
	}
	md, _ = re[0].Metadata()
	if md.NumDelivered != 2 {
		t.Fatalf("num delivered %d", md.NumDelivered)
	}
	re[0].AckSync()
	// empty: timeout after expiry
	_, err = sub.Fetch(1, nats.MaxWait(500*time.Millisecond))
	if !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	ci, _ = js.ConsumerInfo(name, "puller")
	if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.Config.Durable != "puller" || ci.Config.AckPolicy != nats.AckExplicitPolicy {
		t.Fatalf("final consumer info %+v", ci)
	}
	if _, err := js.ConsumerInfo(name, "nobody"); !errors.Is(err, nats.ErrConsumerNotFound) {
		t.Fatalf("want ErrConsumerNotFound, got %v", err)
	}
}

func TestJSPushAckExplicit(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("PUSH")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 5; i++ {
		js.Publish(name+".x", []byte(fmt.Sprint(i)))
	}
	sub, err := js.SubscribeSync(name+".x", nats.Durable("pusher"), nats.AckExplicit(), nats.DeliverAll())
	must(t, err, "push subscribe")
	for i := 0; i < 5; i++ {
		m, err := sub.NextMsg(3 * time.Second)
		must(t, err, "next")
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("order: %q at %d", m.Data, i)
		}
		must(t, m.AckSync(), "ack")
	}
	js.Publish(name+".x", []byte("5"))
	m, err := sub.NextMsg(3 * time.Second)
	must(t, err, "next live")
	m.AckSync()
	ci, err := js.ConsumerInfo(name, "pusher")
	must(t, err, "consumer info")
	if ci.Delivered.Stream != 6 || ci.NumPending != 0 || ci.NumAckPending != 0 || !ci.PushBound {
		t.Fatalf("consumer info %+v", ci)
	}
	// callback subscriber with manual ack
	got := make(chan string, 10)
	s2, err := js.Subscribe(name+".x", func(m *nats.Msg) { got <- string(m.Data); m.Ack() }, nats.ManualAck(), nats.DeliverLast())
	must(t, err, "cb subscribe")
	defer s2.Unsubscribe()
	select {
	case v := <-got:
		if v != "5" {
			t.Fatalf("deliver last got %q", v)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no message on callback subscriber")
	}
}

func TestJSOrderedConsumer(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("ORD")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 50; i++ {
		js.Publish(name+".x", []byte(fmt.Sprint(i)))
	}
	sub, err := js.SubscribeSync(name+".x", nats.OrderedConsumer())
	must(t, err, "ordered subscribe")
	defer sub.Unsubscribe()
	for i := 0; i < 50; i++ {
		m, err := sub.NextMsg(3 * time.Second)
		must(t, err, "next")
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("ordered got %q at %d", m.Data, i)
		}
	}
}

func TestJSConsumerManagement(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("CONS")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 7; i++ {
		js.Publish(fmt.Sprintf("%s.%d", name, i%3), []byte("x"))
	}
	ci, err := js.AddConsumer(name, &nats.ConsumerConfig{Durable: "d1", AckPolicy: nats.AckExplicitPolicy, FilterSubject: name + ".1"})
	must(t, err, "add consumer")
	if ci.NumPending != 2 || ci.Config.AckWait != 30*time.Second || ci.Config.MaxDeliver != -1 || ci.Config.DeliverPolicy != nats.DeliverAllPolicy {
		t.Fatalf("consumer %+v", ci)
	}
	ci, err = js.UpdateConsumer(name, &nats.ConsumerConfig{Durable: "d1", AckPolicy: nats.AckExplicitPolicy, FilterSubject: name + ".1", Description: "upd"})
	must(t, err, "update consumer")
	if ci.Config.Description != "upd" {
		t.Fatalf("description %q", ci.Config.Description)
	}
	n := 0
	for range js.ConsumerNames(name) {
		n++
	}
	if n != 1 {
		t.Fatalf("consumer names %d", n)
	}
	must(t, js.DeleteConsumer(name, "d1"), "delete consumer")
	if err := js.DeleteConsumer(name, "d1"); !errors.Is(err, nats.ErrConsumerNotFound) {
		t.Fatalf("want ErrConsumerNotFound, got %v", err)
	}
	ai, err := js.AccountInfo()
	must(t, err, "account info")
	if ai.Streams < 1 {
		t.Fatalf("account info %+v", ai)
	}
}
