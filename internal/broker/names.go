package broker

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidTopic is returned for a topic that not every broker can carry.
// A message with such a topic can never be published: IsPermanent reports
// it as permanent.
var ErrInvalidTopic = errors.New("invalid topic: want dot-separated words of letters, digits, '_' or '-', starting with a letter or digit (e.g. user.created)")

// ErrInvalidGroup is returned for a consumer group name that not every
// broker accepts.
var ErrInvalidGroup = errors.New("invalid consumer group: want 1-64 letters, digits, '_' or '-'")

// Topics and groups are held to what every transport accepts as it is, so
// that one name means the same thing on all of them: NATS subjects split on
// dots and forbid wildcards and spaces, NATS consumer names forbid dots, and
// AMQP, Kafka and watermill-sql allow little more than this. A leading '_'
// is kept for subjects outboxd reserves (natsDeliverPrefix).
var (
	topicPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)
	groupPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// maxTopicLen keeps Kafka's limit (249) with room; postgres has its own,
// lower one (see postgresMaxTopicLen).
const maxTopicLen = 200

func checkTopic(topic string) error {
	if len(topic) > maxTopicLen || !topicPattern.MatchString(topic) {
		return fmt.Errorf("topic %q: %w", topic, ErrInvalidTopic)
	}
	return nil
}

func checkGroup(group string) error {
	if !groupPattern.MatchString(group) {
		return fmt.Errorf("group %q: %w", group, ErrInvalidGroup)
	}
	return nil
}

// natsStreamName is the JetStream stream holding topic: stream names may not
// contain dots, so they become underscores (user.created → user_created).
// Two topics differing only there would share a name; ensureStream detects
// it rather than mixing them.
func natsStreamName(topic string) string {
	return strings.ReplaceAll(topic, ".", "_")
}
