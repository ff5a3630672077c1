package inbox_test

import (
	"context"
	"fmt"
	"log"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/outbox/inbox"
)

// Process a delivered message so that its effect happens once, however often
// the broker delivers it.
func ExampleProcess() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS greetings (message_id uuid, text text)`); err != nil {
		log.Fatal(err)
	}

	messageID := uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b")
	for delivery := 1; delivery <= 2; delivery++ { // the broker delivers twice
		done, err := inbox.Process(ctx, pool, "greeter", messageID, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO greetings VALUES ($1, 'hello')`, messageID)
			return err
		})
		if err != nil {
			log.Fatal(err) // nothing written: leave the message for redelivery
		}
		fmt.Printf("delivery %d: done=%t\n", delivery, done)
	}

	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM greetings`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("greetings:", n)
	// Output:
	// delivery 1: done=true
	// delivery 2: done=false
	// greetings: 1
}

// Guard an effect outside the database, such as an email: check before, record
// after.
func ExampleSeen() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	messageID := uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-000000000001")
	for delivery := 1; delivery <= 2; delivery++ {
		seen, err := inbox.Seen(ctx, pool, "mailer", messageID)
		if err != nil {
			log.Fatal(err)
		}
		if seen {
			fmt.Printf("delivery %d: already sent\n", delivery)
			continue
		}
		fmt.Printf("delivery %d: sending\n", delivery) // a crash here repeats the send
		if err := inbox.Record(ctx, pool, "mailer", messageID); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// delivery 1: sending
	// delivery 2: already sent
}

// Process a batch of delivered messages in one transaction: each message's
// effect happens once, and a failing message is reported alone.
func ExampleProcessBatch() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS welcomes (message_id uuid PRIMARY KEY, name text NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	names := map[uuid.UUID]string{
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000b001"): "ada",
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000b002"): "nobody", // poison: stored as NULL, which welcomes refuses
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000b003"): "grace",
	}
	var batch []inbox.Message
	for _, id := range []uuid.UUID{
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000b001"),
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000b002"),
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000b003"),
	} {
		// The effect writes with Exec alone and ignores its CommandTag, so
		// the batch may send every effect's statement in one round trip.
		batch = append(batch, inbox.Message{ID: id, Pipelined: true, Effect: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO welcomes VALUES ($1, NULLIF($2, 'nobody'))`, id, names[id])
			return err
		}})
	}

	for delivery := 1; delivery <= 2; delivery++ { // the broker delivers the batch twice
		outcomes, err := inbox.ProcessBatch(ctx, pool, "welcomer", batch)
		if err != nil {
			log.Fatal(err) // nothing written: leave the whole batch for redelivery
		}
		for _, o := range outcomes {
			switch {
			case o.Err != nil:
				fmt.Printf("delivery %d: %s failed alone\n", delivery, names[o.ID])
			case o.Duplicate():
				fmt.Printf("delivery %d: %s duplicate\n", delivery, names[o.ID])
			default:
				fmt.Printf("delivery %d: %s done\n", delivery, names[o.ID])
			}
		}
	}
	// Output:
	// delivery 1: ada done
	// delivery 1: nobody failed alone
	// delivery 1: grace done
	// delivery 2: ada duplicate
	// delivery 2: nobody failed alone
	// delivery 2: grace duplicate
}

func ExampleProcessSet() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS badges (message_id uuid PRIMARY KEY, name text NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	ids := []uuid.UUID{
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000c001"),
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000c002"),
		uuid.MustParse("0190a3c4-5b6d-7e8f-9a0b-00000000c003"),
	}
	names := []string{"ada", "nobody", "grace"} // nobody is poison: stored as NULL, which badges refuses
	// One statement writes the effects of every message the inbox has not
	// seen; when it fails, it runs again for each message alone.
	write := func(ctx context.Context, tx pgx.Tx, indexes []int) error {
		setIDs, setNames := make([]uuid.UUID, len(indexes)), make([]string, len(indexes))
		for k, i := range indexes {
			setIDs[k], setNames[k] = ids[i], names[i]
		}
		_, err := tx.Exec(ctx, `INSERT INTO badges SELECT id, NULLIF(name, 'nobody') FROM unnest($1::uuid[], $2::text[]) AS m(id, name)`, setIDs, setNames)
		return err
	}

	for delivery := 1; delivery <= 2; delivery++ { // the broker delivers the batch twice
		outcomes, err := inbox.ProcessSet(ctx, pool, "badger", ids, write)
		if err != nil {
			log.Fatal(err) // nothing written: leave the whole batch for redelivery
		}
		for i, o := range outcomes {
			switch {
			case o.Err != nil:
				fmt.Printf("delivery %d: %s failed alone\n", delivery, names[i])
			case o.Duplicate():
				fmt.Printf("delivery %d: %s duplicate\n", delivery, names[i])
			default:
				fmt.Printf("delivery %d: %s done\n", delivery, names[i])
			}
		}
	}
	// Output:
	// delivery 1: ada done
	// delivery 1: nobody failed alone
	// delivery 1: grace done
	// delivery 2: ada duplicate
	// delivery 2: nobody failed alone
	// delivery 2: grace duplicate
}
