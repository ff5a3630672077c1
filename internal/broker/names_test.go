package broker

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckTopic(t *testing.T) {
	t.Parallel()
	valid := []string{"user.created", "user_created", "a", "Order-Placed.v2", "a.b.c.d", strings.Repeat("x", maxTopicLen)}
	invalid := []string{"", ".user", "user.", "user..created", "user created", "user.*", "user.>", "_outboxd.deliver.x", "-x", "$JS.API", "ü", strings.Repeat("x", maxTopicLen+1)}
	for _, topic := range valid {
		require.NoError(t, checkTopic(topic), "%q", topic)
	}
	for _, topic := range invalid {
		require.ErrorIs(t, checkTopic(topic), ErrInvalidTopic, "%q", topic)
	}
}

func TestNATSStreamName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "user_created", natsStreamName("user.created"))
	require.Equal(t, "a_b_c", natsStreamName("a.b.c"))
}

func TestPostgresTopicFitsTableNames(t *testing.T) {
	t.Parallel()
	require.NoError(t, checkPostgresTopic(strings.Repeat("x", 45)))
	require.ErrorIs(t, checkPostgresTopic(strings.Repeat("x", 46)), ErrInvalidTopic)
}
