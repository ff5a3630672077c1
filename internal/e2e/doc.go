// Package e2e tests outboxd's parts together, over real PostgreSQL and real
// brokers on loopback: the relay publishing through each broker, and the
// whole signup → relay → worker pipeline. It has no code of its own.
package e2e
