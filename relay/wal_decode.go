package relay

import (
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// walColumns are the outbox columns a published message needs, in the
// order of walRelation.index.
var walColumns = []string{"id", "message_id", "topic", "key", "payload", "metadata", "created_at", "attempts", "xid"}

// walRelation is a relation of the stream with the position of each of
// walColumns in its tuples.
type walRelation struct {
	msg   *pglogrepl.RelationMessage
	index []int
}

// walDecoder turns pgoutput's insert tuples of the outbox into rows.
type walDecoder struct {
	relations map[uint32]walRelation
	types     *pgtype.Map
}

func newWALDecoder() *walDecoder {
	return &walDecoder{relations: make(map[uint32]walRelation), types: pgtype.NewMap()}
}

// relation records a relation message, which precedes the first change of
// a relation in each session and follows any change of its columns.
func (d *walDecoder) relation(m *pglogrepl.RelationMessage) error {
	rel := walRelation{msg: m, index: make([]int, len(walColumns))}
	for i, name := range walColumns {
		rel.index[i] = -1
		for j, c := range m.Columns {
			if c.Name == name {
				rel.index[i] = j
				break
			}
		}
		if rel.index[i] < 0 {
			return fmt.Errorf("relation %s.%s in the publication has no column %s: is it the outbox?", m.Namespace, m.RelationName, name)
		}
	}
	d.relations[m.RelationID] = rel
	return nil
}

// insert decodes an inserted outbox row.
func (d *walDecoder) insert(m *pglogrepl.InsertMessage) (row, error) {
	rel, ok := d.relations[m.RelationID]
	if !ok {
		return row{}, fmt.Errorf("insert into unknown relation %d", m.RelationID)
	}
	var (
		rw       row
		attempts int32
	)
	targets := []any{&rw.id, &rw.messageID, &rw.topic, &rw.key, &rw.payload, &rw.metadata, &rw.createdAt, &attempts, &rw.xid}
	for i, target := range targets {
		j := rel.index[i]
		if j >= len(m.Tuple.Columns) {
			return row{}, fmt.Errorf("insert into %s: tuple has no column %s", rel.msg.RelationName, walColumns[i])
		}
		col := m.Tuple.Columns[j]
		var format int16
		switch col.DataType {
		case pglogrepl.TupleDataTypeBinary:
			format = pgtype.BinaryFormatCode
		case pglogrepl.TupleDataTypeText:
			format = pgtype.TextFormatCode
		default:
			return row{}, fmt.Errorf("insert into %s: column %s is %q, not a value", rel.msg.RelationName, walColumns[i], col.DataType)
		}
		if err := d.types.Scan(rel.msg.Columns[j].DataType, format, col.Data, target); err != nil {
			return row{}, fmt.Errorf("insert into %s: decode column %s: %w", rel.msg.RelationName, walColumns[i], err)
		}
	}
	rw.attempts = int(attempts)
	if rw.payload == nil {
		rw.payload = []byte{}
	}
	return rw, nil
}
