package relay_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

// startNATS runs a JetStream server of the test's own on a free loopback
// port (0) or a given one, storing in dir.
func startNATS(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1 // random
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second), "NATS server did not start")
	return ns
}

func stopNATS(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}

// The broker goes away for 10 s while messages keep being enqueued: the relay
// keeps retrying without counting attempts or dead-lettering anything, and
// once the broker is back every message reaches a durable consumer.
func TestRelaySurvivesABrokerOutage(t *testing.T) {
	t.Parallel()
	forEachCapture(t, func(t *testing.T, capture relay.Capture) {
		ctx := context.Background()
		pool := pgtest.NewPool(t)
		dir := t.TempDir()
		ns := startNATS(t, 0, dir)
		t.Cleanup(func() { stopNATS(ns) })
		port := ns.Addr().(*net.TCPAddr).Port
		url := ns.ClientURL()

		admin, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(admin.Close)
		js, err := jetstream.New(admin)
		require.NoError(t, err)
		stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RELAY", Subjects: []string{"relay.>"}})
		require.NoError(t, err)

		pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
			URL:         url,
			NatsOptions: []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)},
			JetStream: wmnats.JetStreamConfig{
				TrackMsgId:     true, // JetStream drops a re-sent message id
				ConnectOptions: []nats.JSOpt{nats.MaxWait(time.Second)},
			},
		}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = pub.Close() })

		reg := prometheus.NewPedanticRegistry()
		start(t, newRelay(t, pool, pub, relay.Config{Capture: capture,
			BatchSize: 100, RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: 500 * time.Millisecond, Registerer: reg,
		}))

		// About 200 messages/s over 20 keys, until told to stop.
		var w keyedWriter
		writeCtx, stopWriting := context.WithCancel(ctx)
		defer stopWriting()
		var writing sync.WaitGroup
		writing.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-writeCtx.Done():
					return
				case <-tick.C:
				}
				enqueue(t, pool, w.next(fmt.Sprintf("k%d", (2*i)%20)), w.next(fmt.Sprintf("k%d", (2*i+1)%20)))
			}
		})
		streamed := func() uint64 {
			info, err := stream.Info(ctx)
			if err != nil {
				return 0
			}
			return info.State.Msgs
		}
		require.Eventually(t, func() bool { return streamed() >= 100 }, 10*time.Second, 10*time.Millisecond)

		stopNATS(ns)
		down := time.Now()
		transient := func() float64 {
			return testutil.ToFloat64(metric(t, reg, "outboxd_relay_publish_failures_total", "transient"))
		}
		require.Eventually(t, func() bool { return transient() >= 3 }, 10*time.Second, 10*time.Millisecond,
			"the relay keeps retrying")
		time.Sleep(time.Until(down.Add(10 * time.Second))) // the outage lasts 10 s whatever the relay does
		require.Positive(t, countRows(t, pool, `SELECT count(*) FROM outbox`), "the backlog waits in the outbox")
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox WHERE attempts > 0`), "an outage counts no attempt")
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox_dead_letters`))
		t.Logf("outage: %.0f transient failures, backlog %d", transient(),
			countRows(t, pool, `SELECT count(*) FROM outbox`))

		ns = startNATS(t, port, dir)
		up := time.Now()
		before := streamed()
		require.Eventually(t, func() bool { return streamed() > before+100 }, 20*time.Second, 10*time.Millisecond)
		stopWriting()
		writing.Wait()

		written := w.written()
		require.Eventually(t, func() bool { return countRows(t, pool, `SELECT count(*) FROM outbox`) == 0 },
			30*time.Second, 10*time.Millisecond, "the backlog drains")
		t.Logf("backlog drained %s after the broker came back", time.Since(up).Round(time.Millisecond))
		require.Zero(t, countRows(t, pool, `SELECT count(*) FROM outbox_dead_letters`))

		// Every message id reaches a durable consumer.
		cons, err := js.CreateOrUpdateConsumer(ctx, "RELAY", jetstream.ConsumerConfig{
			Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy,
		})
		require.NoError(t, err)
		got := map[string]bool{}
		require.Eventually(t, func() bool {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(200*time.Millisecond))
			require.NoError(t, err)
			for m := range batch.Messages() {
				got[m.Headers().Get(wmnats.WatermillUUIDHdr)] = true
				require.Equal(t, testTopic, m.Subject())
				require.NoError(t, m.Ack())
			}
			return len(got) >= len(written)
		}, 30*time.Second, time.Millisecond)
		for _, id := range written {
			require.True(t, got[id.String()], "message %s lost", id)
		}
		require.Len(t, got, len(written))
		t.Logf("%d messages through a 10 s outage", len(written))
	})
}
