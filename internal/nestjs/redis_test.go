package nestjs_test

import (
	"testing"

	"github.com/outboxd/outboxd/internal/nestjs"
)

// redisURL is the Redis .ci/run starts. PUB/SUB channels ignore the
// database number, so the tests that use it filter by user id, and only
// this one answers requests on it.
const redisURL = "redis://127.0.0.1:6379/0"

// TestNestJSOverRedis: over Redis PUB/SUB, a signup reaches a NestJS
// @EventPattern('user_created') handler, and a NestJS client's
// send({ cmd: 'get_user_by_id' }) gets the profile or an error it can read.
func TestNestJSOverRedis(t *testing.T) {
	t.Parallel()
	s := startStack(t, embeddedNATS(t), nestjs.Config{Transport: nestjs.TransportRedis, URL: redisURL})
	checkTransport(t, s, []string{"NESTJS_BROKER=redis", "NESTJS_URL=" + redisURL}, "bo@example.com", "Bo")
}
