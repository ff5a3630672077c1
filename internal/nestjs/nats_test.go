package nestjs_test

import (
	"testing"

	"github.com/outboxd/outboxd/internal/nestjs"
)

// TestNestJSOverNATS: over core NATS, a signup reaches a NestJS
// @EventPattern('user_created') handler, and a NestJS client's
// send({ cmd: 'get_user_by_id' }) gets the profile or an error it can read.
func TestNestJSOverNATS(t *testing.T) {
	t.Parallel()
	url := embeddedNATS(t)
	s := startStack(t, url, nestjs.Config{Transport: nestjs.TransportNATS, URL: url})
	checkTransport(t, s, []string{"NESTJS_BROKER=nats", "NESTJS_URL=" + url}, "ann@example.com", "Ann")
}
