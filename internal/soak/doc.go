// Package soak holds the fault soak of outboxd: a test that runs the API, three
// relay replicas and the worker as real processes against a PostgreSQL
// cluster of its own and an embedded NATS, signs users up at a steady rate,
// kills and restarts the processes, stops the broker and restarts
// PostgreSQL, then reconciles every user against its profile, audit record
// and welcome mail. It has no code of its own besides its tests.
package soak
