package embergo

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestJSStreamInfoSubjectsAndDirectGet(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("SIF")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, AllowDirect: true})
	for i := 0; i < 6; i++ {
		js.Publish(fmt.Sprintf("%s.%c.x", name, 'a'+i%3), []byte(fmt.Sprint(i)))
	}
	si, err := js.StreamInfo(name, &nats.StreamInfoRequest{SubjectsFilter: name + ".a.>"})
	must(t, err, "info with filter")
	if len(si.State.Subjects) != 1 || si.State.Subjects[name+".a.x"] != 2 {
		t.Fatalf("subjects %v", si.State.Subjects)
	}
	si, err = js.StreamInfo(name, &nats.StreamInfoRequest{SubjectsFilter: ">"})
	must(t, err, "info with >")
	if len(si.State.Subjects) != 3 {
		t.Fatalf("subjects %v", si.State.Subjects)
	}
	if !si.Config.AllowDirect {
		t.Fatal("allow_direct not echoed")
	}
	m, err := js.GetMsg(name, 2, nats.DirectGet())
	must(t, err, "direct get seq")
	if m.Sequence != 2 || string(m.Data) != "1" || m.Subject != name+".b.x" {
		t.Fatalf("direct get %d %q %s", m.Sequence, m.Data, m.Subject)
	}
	m, err = js.GetLastMsg(name, name+".c.x", nats.DirectGet())
	must(t, err, "direct get last")
	if m.Sequence != 6 {
		t.Fatalf("direct last %d", m.Sequence)
	}
	m, err = js.GetMsg(name, 2, nats.DirectGetNext(name+".a.x"))
	must(t, err, "direct get next")
	if m.Sequence != 4 {
		t.Fatalf("direct next %d", m.Sequence)
	}
	if _, err := js.GetMsg(name, 99, nats.DirectGet()); !errors.Is(err, nats.ErrMsgNotFound) {
		t.Fatalf("direct get missing: want ErrMsgNotFound, got %v", err)
	}
	n := 0
	for range js.StreamNames(nats.StreamListFilter(name + ".b.x")) {
		n++
	}
	if n != 1 {
		t.Fatalf("stream names with subject filter: %d", n)
	}
	cnt := 0
	for si := range js.StreamsInfo() {
		if si.Config.Name == name {
			cnt++
		}
	}
	if cnt != 1 {
		t.Fatalf("StreamsInfo lists stream %d times", cnt)
	}
}

func TestJSPurgeOptionsAndRollup(t *testing.T) {
	nc, js := jsctx(t)
	name := uniq("PRG")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}, AllowRollup: true})
	for i := 0; i < 10; i++ {
		js.Publish(fmt.Sprintf("%s.%d", name, i%2), []byte("x"))
	}
	// purge with filter and keep through the raw API (nats.go 1.22 has no PurgeOpt)
	r, err := nc.Request("$JS.API.STREAM.PURGE."+name, []byte(`{"filter":"`+name+`.0","keep":1}`), 3*time.Second)
	must(t, err, "purge request")
	if string(r.Data) != `{"type":"io.nats.jetstream.api.v1.stream_purge_response","success":true,"purged":4}` {
		t.Fatalf("purge reply %s", r.Data)
	}
	m := nats.NewMsg(name + ".1")
	m.Header.Set("Nats-Rollup", "sub")
	m.Data = []byte("rolled")
	_, err = js.PublishMsg(m)
	must(t, err, "rollup publish")
	si, _ := js.StreamInfo(name)
	if si.State.Msgs != 2 {
		t.Fatalf("after rollup msgs %d", si.State.Msgs)
	}
	// rollup refused without allow_rollup_hdrs
	name2 := uniq("NORL")
	addStream(t, js, &nats.StreamConfig{Name: name2, Subjects: []string{name2}})
	m2 := nats.NewMsg(name2)
	m2.Header.Set("Nats-Rollup", "all")
	_, err = js.PublishMsg(m2)
	var apiErr *nats.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10111 || apiErr.Description != "rollup not permitted" {
		t.Fatalf("want rollup-not-permitted 10111, got %v", err)
	}
}

func TestJSRetentionPolicies(t *testing.T) {
	_, js := jsctx(t)
	wq := uniq("WQ")
	addStream(t, js, &nats.StreamConfig{Name: wq, Subjects: []string{wq + ".>"}, Retention: nats.WorkQueuePolicy})
	for i := 0; i < 3; i++ {
		js.Publish(wq+".job", []byte("j"))
	}
	sub, err := js.PullSubscribe(wq+".job", "worker")
	must(t, err, "pull")
	msgs, err := sub.Fetch(3, nats.MaxWait(2*time.Second))
	must(t, err, "fetch")
	for _, m := range msgs {
		m.AckSync()
	}
	si, _ := js.StreamInfo(wq)
	if si.State.Msgs != 0 {
		t.Fatalf("work queue keeps %d acked messages", si.State.Msgs)
	}
	// a second consumer on the same subject is refused
	_, err = js.AddConsumer(wq, &nats.ConsumerConfig{Durable: "other", AckPolicy: nats.AckExplicitPolicy})
	var apiErr *nats.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10099 {
		t.Fatalf("want 10099 (work queue overlapping), got %v", err)
	}
	in := uniq("INT")
	addStream(t, js, &nats.StreamConfig{Name: in, Subjects: []string{in + ".>"}, Retention: nats.InterestPolicy})
	js.Publish(in+".x", []byte("no interest"))
	si, _ = js.StreamInfo(in)
	if si.State.Msgs != 0 {
		t.Fatalf("interest stream kept %d messages without consumers", si.State.Msgs)
	}
}

func TestJSAckPoliciesAndRedelivery(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("ACKP")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 5; i++ {
		js.Publish(name+".x", []byte(fmt.Sprint(i)))
	}
	// ack all: acking the 3rd acks 1..3
	sub, err := js.PullSubscribe(name+".x", "all", nats.AckAll())
	must(t, err, "pull ack all")
	msgs, err := sub.Fetch(3, nats.MaxWait(2*time.Second))
	must(t, err, "fetch")
	must(t, msgs[2].AckSync(), "ack 3rd")
	ci, _ := js.ConsumerInfo(name, "all")
	if ci.AckFloor.Stream != 3 || ci.NumAckPending != 0 {
		t.Fatalf("ack all floor %d pending %d", ci.AckFloor.Stream, ci.NumAckPending)
	}
	// ack none
	sub2, err := js.PullSubscribe(name+".x", "none", nats.AckNone())
	must(t, err, "pull ack none")
	msgs, err = sub2.Fetch(5, nats.MaxWait(2*time.Second))
	must(t, err, "fetch none")
	ci, _ = js.ConsumerInfo(name, "none")
	if len(msgs) != 5 || ci.NumAckPending != 0 || ci.AckFloor.Stream != 5 {
		t.Fatalf("ack none: %d msgs, ack pending %d floor %d", len(msgs), ci.NumAckPending, ci.AckFloor.Stream)
	}
	// ack_wait redelivery bounded by max_deliver
	_, err = js.AddConsumer(name, &nats.ConsumerConfig{Durable: "redo", AckPolicy: nats.AckExplicitPolicy,
		AckWait: 300 * time.Millisecond, MaxDeliver: 2, FilterSubject: name + ".x", OptStartSeq: 5, DeliverPolicy: nats.DeliverByStartSequencePolicy})
	must(t, err, "add redo")
	sub3, err := js.PullSubscribe(name+".x", "redo", nats.Bind(name, "redo"))
	must(t, err, "bind redo")
	deliveries := 0
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		ms, err := sub3.Fetch(1, nats.MaxWait(500*time.Millisecond))
		if err == nil && len(ms) == 1 {
			deliveries++
			md, _ := ms[0].Metadata()
			if md.NumDelivered != uint64(deliveries) {
				t.Fatalf("num delivered %d at delivery %d", md.NumDelivered, deliveries)
			}
		}
		if deliveries == 2 {
			break
		}
	}
	if deliveries != 2 {
		t.Fatalf("deliveries %d, want 2", deliveries)
	}
	// no third delivery
	if ms, err := sub3.Fetch(1, nats.MaxWait(800*time.Millisecond)); err == nil {
		t.Fatalf("delivered beyond max_deliver: %d", len(ms))
	}
}

func TestJSPushHeartbeatsFlowControlHeadersOnly(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("HB")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	payload := make([]byte, 1024)
	for i := 0; i < 300; i++ {
		js.PublishAsync(name+".x", payload)
	}
	<-js.PublishAsyncComplete()
	var errs int32
	var got int32
	done := make(chan struct{})
	sub, err := js.Subscribe(name+".x", func(m *nats.Msg) {
		if atomic.AddInt32(&got, 1) == 300 {
			close(done)
		}
	}, nats.AckNone(), nats.IdleHeartbeat(500*time.Millisecond), nats.EnableFlowControl())
	must(t, err, "subscribe fc")
	defer sub.Unsubscribe()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("flow-controlled push got %d of 300", got)
	}
	if errs != 0 {
		t.Fatal("errors")
	}
	hsub, err := js.SubscribeSync(name+".x", nats.HeadersOnly(), nats.AckNone(), nats.DeliverLast())
	must(t, err, "headers only")
	m, err := hsub.NextMsg(3 * time.Second)
	must(t, err, "next headers only")
	if len(m.Data) != 0 || m.Header.Get("Nats-Msg-Size") != "1024" {
		t.Fatalf("headers only: data %d size %q", len(m.Data), m.Header.Get("Nats-Msg-Size"))
	}
	hsub.Unsubscribe()
}

func TestJSQueuePushAndDeliverPolicies(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("QP")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	for i := 0; i < 6; i++ {
		js.Publish(fmt.Sprintf("%s.%d", name, i%3), []byte(fmt.Sprint(i)))
	}
	var n int32
	done := make(chan struct{})
	cb := func(m *nats.Msg) {
		m.Ack()
		if atomic.AddInt32(&n, 1) == 6 {
			close(done)
		}
	}
	s1, err := js.QueueSubscribe(name+".*", "grp", cb, nats.Durable("grp"))
	must(t, err, "queue sub 1")
	s2, err := js.QueueSubscribe(name+".*", "grp", cb, nats.Durable("grp"))
	must(t, err, "queue sub 2")
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("queue push got %d of 6", n)
	}
	s1.Unsubscribe()
	s2.Unsubscribe()
	// deliver last per subject
	sub, err := js.SubscribeSync(name+".*", nats.DeliverLastPerSubject(), nats.AckNone())
	must(t, err, "last per subject")
	seen := map[string]string{}
	for i := 0; i < 3; i++ {
		m, err := sub.NextMsg(3 * time.Second)
		must(t, err, "next")
		seen[m.Subject] = string(m.Data)
	}
	if seen[name+".0"] != "3" || seen[name+".1"] != "4" || seen[name+".2"] != "5" {
		t.Fatalf("last per subject %v", seen)
	}
	sub.Unsubscribe()
	// start sequence
	sub, err = js.SubscribeSync(name+".*", nats.StartSequence(5), nats.AckNone())
	must(t, err, "start seq")
	m, err := sub.NextMsg(3 * time.Second)
	must(t, err, "next start seq")
	if string(m.Data) != "4" {
		t.Fatalf("start seq got %q", m.Data)
	}
	sub.Unsubscribe()
}

func TestJSPullStatusErrors(t *testing.T) {
	_, js := jsctx(t)
	name := uniq("PST")
	addStream(t, js, &nats.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	js.Publish(name+".x", []byte("1"))
	sub, err := js.PullSubscribe(name+".x", "st", nats.MaxRequestBatch(2))
	must(t, err, "pull")
	// exceeding max_request_batch: the server answers 409 and Fetch returns an error
	_, err = sub.Fetch(5, nats.MaxWait(time.Second))
	if err == nil || errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("want a max request batch error, got %v", err)
	}
	// consumer deleted while a Fetch waits
	errc := make(chan error, 1)
	sub2, err := js.PullSubscribe(name+".none", "gone")
	must(t, err, "pull 2")
	go func() {
		_, err := sub2.Fetch(1, nats.MaxWait(4*time.Second))
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	must(t, js.DeleteConsumer(name, "gone"), "delete consumer")
	select {
	case err := <-errc:
		if !errors.Is(err, nats.ErrConsumerDeleted) {
			t.Fatalf("want ErrConsumerDeleted, got %v", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("fetch did not return")
	}
}

func TestJSMirrorAndSources(t *testing.T) {
	_, js := jsctx(t)
	src := uniq("SRC")
	addStream(t, js, &nats.StreamConfig{Name: src, Subjects: []string{src + ".>"}})
	for i := 0; i < 5; i++ {
		js.Publish(src+".x", []byte(fmt.Sprint(i)))
	}
	mir := uniq("MIR")
	addStream(t, js, &nats.StreamConfig{Name: mir, Mirror: &nats.StreamSource{Name: src}})
	agg := uniq("AGG")
	addStream(t, js, &nats.StreamConfig{Name: agg, Sources: []*nats.StreamSource{{Name: src, FilterSubject: src + ".x"}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, _ := js.StreamInfo(mir)
		b, _ := js.StreamInfo(agg)
		if a != nil && b != nil && a.State.Msgs == 5 && b.State.Msgs == 5 {
			if a.Mirror == nil || a.Mirror.Name != src || len(b.Sources) != 1 {
				t.Fatalf("mirror/source info %+v %+v", a.Mirror, b.Sources)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror/source did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	m, err := js.GetMsg(mir, 3)
	must(t, err, "get from mirror")
	if string(m.Data) != "2" {
		t.Fatalf("mirror msg %q", m.Data)
	}
}
