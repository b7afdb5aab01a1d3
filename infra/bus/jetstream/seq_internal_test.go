package jetstream

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/testenv"
)

// replyMsg is a message with only an ack subject, for streamSeq.
type replyMsg struct {
	jetstream.Msg
	reply string
}

func (m replyMsg) Reply() string   { return m.reply }
func (m replyMsg) Subject() string { return "evflow.0.app.a" }

func TestStreamSeqReadsBothAckSubjectFormats(t *testing.T) {
	cases := []struct{ reply, want string }{
		{"$JS.ACK.EVFLOW.cons.1.42.7.1700000000000000000.3", "42"},
		{"$JS.ACK._.ACCHASH.EVFLOW.cons.1.42.7.1700000000000000000.3.rnd", "42"},
		{"$JS.ACK.dom.ACCHASH.EVFLOW.cons.2.18446744073709551615.7.1700000000000000000.0", "18446744073709551615"},
		{"$JS.ACK.EVFLOW.cons.1.0.7.1700000000000000000.3", ""},    // no sequence 0
		{"$JS.ACK.EVFLOW.cons.1.042.7.1700000000000000000.3", ""},  // not as the server writes it
		{"$JS.ACK.EVFLOW.cons.1.x.7.1700000000000000000.3", ""},    // not a number
		{"$JS.ACK.EVFLOW.cons.1.42.7.1700000000000000000.3.x", ""}, // 10 tokens: neither format
		{"$JS.ACK.EVFLOW.cons.1.42", ""},                           // too short
		{"$XY.ACK.EVFLOW.cons.1.42.7.1700000000000000000.3", ""},   // not an ack subject
		{"", ""},
	}
	for _, c := range cases {
		got, err := streamSeq(replyMsg{reply: c.reply})
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: got %q, want an error", c.reply, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %s", c.reply, got, err, c.want)
		}
	}
}

// streamSeq agrees with the client's own parse of what a server sends.
func TestStreamSeqAgreesWithMetadata(t *testing.T) {
	ctx := testenv.Context(t)
	srv := testenv.StartNATS(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, "s."+strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{OptStartSeq: 2, DeliverPolicy: jetstream.DeliverByStartSequencePolicy})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		got, err := streamSeq(m)
		if err != nil || got != strconv.FormatUint(md.Sequence.Stream, 10) {
			t.Errorf("ack subject %q: streamSeq %q, %v; metadata says %d", m.Reply(), got, err, md.Sequence.Stream)
		}
	}
}
