package relay

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// walChunk is a run of rows of one committed transaction, in commit order.
// A transaction larger than a batch comes in several chunks; its last one
// carries the end of its commit record, the position the slot may confirm
// once every row up to there is settled.
type walChunk struct {
	rows []row
	end  pglogrepl.LSN // 0 but on a transaction's last chunk
}

// walPosition is the slot position shared by the stream reader, which
// reports it to the server, and the processor, which advances it.
type walPosition struct {
	// confirmed is the end of the newest transaction whose rows, and every
	// earlier transaction's, are published and settled.
	confirmed atomic.Uint64
	// outstanding counts the chunks handed to the processor and not yet
	// settled; while it is 0 between transactions, nothing is pending and
	// the slot may advance to the server's position.
	outstanding atomic.Int64
	// movedAt is when confirmed last moved (Unix ns).
	movedAt atomic.Int64
	// receivedAt is when the stream last received anything (Unix ns).
	receivedAt atomic.Int64
}

// advance moves confirmed forward to lsn, never back.
func (p *walPosition) advance(lsn pglogrepl.LSN) {
	for {
		cur := p.confirmed.Load()
		if uint64(lsn) <= cur {
			return
		}
		if p.confirmed.CompareAndSwap(cur, uint64(lsn)) {
			p.movedAt.Store(time.Now().UnixNano())
			return
		}
	}
}

// walStream reads a started replication stream: it decodes the outbox's
// inserts into chunks for the processor, answers the server's keepalives
// and reports the confirmed position every status interval, also while the
// processor is busy (a broker outage) so that the server does not time the
// connection out.
type walStream struct {
	conn     *pgconn.PgConn
	pos      *walPosition
	out      chan<- walChunk
	batch    int
	interval time.Duration
	decoder  *walDecoder

	inTxn   bool
	txnEnd  pglogrepl.LSN
	rows    []row
	sentAt  time.Time
	sentPos pglogrepl.LSN
}

// run reads until ctx ends or the connection fails.
func (s *walStream) run(ctx context.Context) error {
	s.decoder = newWALDecoder()
	if err := s.report(ctx, true); err != nil {
		return err
	}
	for {
		if err := s.reportIfDue(ctx); err != nil {
			return err
		}
		wait := s.interval
		if pglogrepl.LSN(s.pos.confirmed.Load()) != s.sentPos {
			wait = walReportMinInterval
		}
		recvCtx, cancel := context.WithDeadline(ctx, s.sentAt.Add(wait))
		msg, err := s.conn.ReceiveMessage(recvCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive from the WAL stream: %w", err)
		}
		s.pos.receivedAt.Store(time.Now().UnixNano())
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.handle(ctx, bytes.Clone(msg.Data)); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("WAL stream: %w", pgconn.ErrorResponseToPgError(msg))
		default:
			// NoticeResponse and the like: nothing to do.
		}
	}
}

func (s *walStream) handle(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("WAL stream: %w", err)
		}
		// Every message the server sent before this keepalive has been
		// read; when none of it waits to be settled, the slot may skip
		// the WAL up to here (other tables, other databases, our own
		// deletes), so that an idle outbox pins nothing.
		if !s.inTxn && s.pos.outstanding.Load() == 0 {
			s.pos.advance(ka.ServerWALEnd)
		}
		if ka.ReplyRequested {
			return s.report(ctx, false)
		}
		return nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("WAL stream: %w", err)
		}
		return s.decode(ctx, xld.WALData)
	}
	return nil
}

// decode handles one pgoutput message (protocol version 1: only committed
// transactions, each whole, in commit order).
func (s *walStream) decode(ctx context.Context, data []byte) error {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("WAL stream: parse pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.decoder.relation(m)
	case *pglogrepl.BeginMessage:
		s.inTxn, s.rows = true, s.rows[:0]
	case *pglogrepl.InsertMessage:
		rw, err := s.decoder.insert(m)
		if err != nil {
			return fmt.Errorf("WAL stream: %w", err)
		}
		s.rows = append(s.rows, rw)
		if len(s.rows) >= s.batch {
			return s.hand(ctx, walChunk{rows: s.flush()})
		}
	case *pglogrepl.CommitMessage:
		s.inTxn = false
		return s.hand(ctx, walChunk{rows: s.flush(), end: m.TransactionEndLSN})
	}
	return nil
}

func (s *walStream) flush() []row {
	rows := make([]row, len(s.rows))
	copy(rows, s.rows)
	s.rows = s.rows[:0]
	return rows
}

// hand gives c to the processor, reporting the position while it waits.
func (s *walStream) hand(ctx context.Context, c walChunk) error {
	if len(c.rows) == 0 && s.pos.outstanding.Load() == 0 {
		// An empty transaction (only our own deletes, say) waits for
		// nothing: the slot may move past it at once.
		s.pos.advance(c.end)
		return nil
	}
	s.pos.outstanding.Add(1)
	t := time.NewTimer(time.Until(s.sentAt.Add(s.interval)))
	defer t.Stop()
	for {
		select {
		case s.out <- c:
			return nil
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.report(ctx, false); err != nil {
				return err
			}
			t.Reset(s.interval)
		}
	}
}

// walReportMinInterval spaces the reports of a position that keeps moving.
const walReportMinInterval = 100 * time.Millisecond

// reportIfDue reports the position when it moved (at most every
// walReportMinInterval) or the interval passed.
func (s *walStream) reportIfDue(ctx context.Context) error {
	since := time.Since(s.sentAt)
	moved := pglogrepl.LSN(s.pos.confirmed.Load()) != s.sentPos
	if since < s.interval && !(moved && since >= walReportMinInterval) {
		return nil
	}
	// Once the interval passed with nothing pending, ask for a keepalive:
	// its position lets an idle slot advance.
	idle := !s.inTxn && s.pos.outstanding.Load() == 0
	return s.report(ctx, idle && since >= s.interval)
}

// report sends the confirmed position as written, flushed and applied, set
// explicitly: pglogrepl replaces a zero flush position by the write one.
func (s *walStream) report(ctx context.Context, replyRequested bool) error {
	lsn := pglogrepl.LSN(s.pos.confirmed.Load())
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn,
		WALFlushPosition: lsn,
		WALApplyPosition: lsn,
		ReplyRequested:   replyRequested,
	})
	if err != nil {
		return fmt.Errorf("report WAL position %s: %w", lsn, err)
	}
	s.sentAt, s.sentPos = time.Now(), lsn
	return nil
}
