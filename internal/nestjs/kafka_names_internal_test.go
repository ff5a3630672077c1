package nestjs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKafkaNames: a pattern whose topic equals another after '.'/'_'
// folding is refused with the mapping to use instead; distinct names and
// a pattern equal to an existing topic pass.
func TestKafkaNames(t *testing.T) {
	t.Parallel()
	routes := []Route{{Topic: "user.created", Pattern: "user_created"}}
	require.NoError(t, checkKafkaNames(routes, []string{"orders", "user-created"}))
	require.NoError(t, checkKafkaNames(routes, []string{"user_created"}), "the same name is the same topic")

	err := checkKafkaNames(routes, []string{"orders", "user.created"})
	require.EqualError(t, err, `nestjs: Kafka refuses topic "user_created" for user.created because it collides with topic "user.created" ('.' and '_' are the same to Kafka): map user.created=user-created instead and listen with @EventPattern('user-created')`)

	err = checkKafkaNames([]Route{{Topic: "a.b", Pattern: "a.b_c"}, {Topic: "x", Pattern: "a_b.c"}}, nil)
	require.ErrorContains(t, err, `collides with topic "a_b.c"`)
}
