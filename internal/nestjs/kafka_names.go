package nestjs

import (
	"fmt"
	"strings"
)

// kafkaFold is the name Kafka compares topics by when it checks a new one
// for collisions: '.' and '_' are the same to it, because both become '_'
// in metric names.
func kafkaFold(topic string) string { return strings.ReplaceAll(topic, ".", "_") }

// checkKafkaNames refuses a route whose pattern, the Kafka topic its events
// go to, collides with another topic: one of others (the cluster's topics
// and those that will be there) or another route's pattern. Kafka would
// refuse to create it, and every event would fail.
func checkKafkaNames(routes []Route, others []string) error {
	for i, r := range routes {
		names := others
		for j, o := range routes {
			if j != i {
				names = append(names[:len(names):len(names)], o.Pattern)
			}
		}
		for _, name := range names {
			if name != r.Pattern && kafkaFold(name) == kafkaFold(r.Pattern) {
				return kafkaCollision(r, name)
			}
		}
	}
	return nil
}

// kafkaCollision says which mapping to use instead of r: its pattern with
// '-' for '.' and '_', which Kafka keeps apart.
func kafkaCollision(r Route, other string) error {
	alt := strings.NewReplacer(".", "-", "_", "-").Replace(r.Pattern)
	return fmt.Errorf("nestjs: Kafka refuses topic %q for %s because it collides with topic %q ('.' and '_' are the same to Kafka): map %s=%s instead and listen with @EventPattern('%s')",
		r.Pattern, r.Topic, other, r.Topic, alt, alt)
}
