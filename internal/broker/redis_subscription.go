package broker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// redisSubscription is one Subscribe's reading of a stream: the entries it
// hands on next and the entries it holds, pending under its consumer.
type redisSubscription struct {
	s      *redisSubscriber
	stream string
	fields watermill.LogFields

	mu sync.Mutex // guards owned and back
	// owned are the entries in the subscription's hands: handed on and not
	// answered, or in back. A claim passes them over.
	owned map[string]bool
	// back are the entries nacked, or not handed on, to be handed on again
	// before any other; whatever is in it when the subscription ends is
	// given back to the group.
	back []string

	// claimAt and checkAt are when the next claim and the next clean-up of
	// idle consumers are due; run's goroutine alone uses them.
	claimAt time.Time
	checkAt time.Time
}

// next returns up to n entries to hand on, taking them into the
// subscription's hands: the nacked ones first, then, when a claim is due,
// those other consumers left pending past maxIdle, else new ones, waiting
// up to redisBlock for them. None when Redis fails or ctx ends.
func (sub *redisSubscription) next(ctx context.Context, n int) []redis.XMessage {
	if entries := sub.again(ctx, n); len(entries) > 0 {
		return entries
	}
	now := time.Now()
	if !now.Before(sub.claimAt) {
		entries, more := sub.claim(ctx, n)
		if !more {
			sub.claimAt = now.Add(sub.s.claimInterval)
		}
		if len(entries) > 0 {
			return entries
		}
	}
	if !now.Before(sub.checkAt) {
		sub.checkAt = now.Add(redisConsumerCheckInterval)
		sub.dropIdleConsumers(ctx)
	}
	return sub.read(ctx, n)
}

// again claims up to n entries of back for the subscription's consumer
// once more (XCLAIM with no minimum idle time: it restarts their idle time
// and counts a delivery), the order they were put back in.
func (sub *redisSubscription) again(ctx context.Context, n int) []redis.XMessage {
	sub.mu.Lock()
	ids := slices.Clone(sub.back[:min(n, len(sub.back))])
	sub.back = sub.back[len(ids):]
	sub.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	entries, err := sub.xclaim(ctx, 0, ids)
	if err != nil && ctx.Err() == nil {
		sub.s.logger.Error("Cannot claim nacked messages again", err, sub.fields)
	}
	claimed := make(map[string]bool, len(entries))
	for _, e := range entries {
		claimed[e.ID] = true
	}
	var unclaimed []string
	for _, id := range ids {
		switch {
		case claimed[id]:
		case err != nil:
			unclaimed = append(unclaimed, id)
		default:
			// Acked since, or deleted.
			sub.disown(id)
		}
	}
	if len(unclaimed) > 0 {
		sub.mu.Lock()
		sub.back = append(unclaimed, sub.back...)
		sub.mu.Unlock()
	}
	return entries
}

// claim takes up to n entries of the group that have been pending for
// maxIdle and that the subscription does not hold, the oldest first: a
// departed consumer's (this one's before a restart, too) or those given
// back. more tells that there may be others.
func (sub *redisSubscription) claim(ctx context.Context, n int) (entries []redis.XMessage, more bool) {
	sub.mu.Lock()
	count := int64(n + len(sub.owned))
	sub.mu.Unlock()
	pending, err := sub.s.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: sub.stream, Group: sub.s.group, Idle: sub.s.maxIdle, Start: "-", End: "+", Count: count,
	}).Result()
	if err != nil {
		if ctx.Err() == nil {
			sub.s.logger.Error("Cannot list pending messages", err, sub.fields)
		}
		return nil, false
	}
	ids := make([]string, 0, n)
	sub.mu.Lock()
	for _, p := range pending {
		if len(ids) < n && !sub.owned[p.ID] {
			ids = append(ids, p.ID)
		}
	}
	sub.mu.Unlock()
	more = int64(len(pending)) == count
	if len(ids) == 0 {
		return nil, more
	}
	// The minimum idle time makes sure that of two consumers claiming an
	// entry at once only one gets it.
	entries, err = sub.xclaim(ctx, sub.s.maxIdle, ids)
	if err != nil && ctx.Err() == nil {
		sub.s.logger.Error("Cannot claim pending messages", err, sub.fields)
	}
	if len(entries) > 0 {
		sub.s.logger.Info("Claimed pending messages", sub.fields.Add(watermill.LogFields{"count": len(entries)}))
	}
	return entries, more
}

// xclaim claims ids for the subscription's consumer and takes the entries
// claimed into its hands, which it returns even with an error. Before Redis 7 a deleted entry makes XCLAIM
// answer nil, which go-redis reports as redis.Nil for them all: then each
// is claimed alone, and the deleted ones are acked, as
// watermill-redisstream does.
func (sub *redisSubscription) xclaim(ctx context.Context, minIdle time.Duration, ids []string) ([]redis.XMessage, error) {
	args := &redis.XClaimArgs{Stream: sub.stream, Group: sub.s.group, Consumer: sub.s.consumer, MinIdle: minIdle, Messages: ids}
	entries, err := sub.s.client.XClaim(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		entries, err = nil, nil
		for _, id := range ids {
			args.Messages = []string{id}
			one, oneErr := sub.s.client.XClaim(ctx, args).Result()
			if errors.Is(oneErr, redis.Nil) {
				sub.ack(id, nil)
				continue
			}
			if oneErr != nil {
				err = oneErr
				break
			}
			entries = append(entries, one...)
		}
	}
	sub.own(entries)
	return entries, err
}

// read reads up to n entries never delivered to the group, waiting up to
// redisBlock for them, and takes them into the subscription's hands.
func (sub *redisSubscription) read(ctx context.Context, n int) []redis.XMessage {
	streams, err := sub.s.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: sub.s.group, Consumer: sub.s.consumer, Streams: []string{sub.stream, ">"},
		Count: int64(n), Block: redisBlock,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err == nil:
	case ctx.Err() != nil:
		return nil
	default:
		sub.s.logger.Error("Cannot read messages, will retry", err, sub.fields.Add(watermill.LogFields{"retry_in": redisRetryPause}))
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// The stream was deleted, and the group with it: the
			// publisher's next XADD would make a stream without it.
			if err := sub.s.createGroup(ctx, sub.stream); err != nil {
				sub.s.logger.Error("Cannot create consumer group again", err, sub.fields)
			}
		}
		pause := time.NewTimer(redisRetryPause)
		defer pause.Stop()
		select {
		case <-pause.C:
		case <-ctx.Done():
		}
		return nil
	}
	var entries []redis.XMessage
	for _, s := range streams {
		entries = append(entries, s.Messages...)
	}
	sub.own(entries)
	return entries
}

// own takes entries into the subscription's hands.
func (sub *redisSubscription) own(entries []redis.XMessage) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, e := range entries {
		sub.owned[e.ID] = true
	}
}

// disown lets go of entry id, answered.
func (sub *redisSubscription) disown(id string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	delete(sub.owned, id)
}

// putBack queues entry id, still in the subscription's hands, to be
// handed on again, or given back when the subscription ends.
func (sub *redisSubscription) putBack(id string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.back = append(sub.back, id)
}

// giveBack gives the entries put back to the group as the subscription
// ends. Redis cannot make a pending entry new again; instead it stays
// pending under the consumer with its idle time set to maxIdle (XCLAIM
// ... IDLE), so that the next claim of any consumer of the group takes it
// at once rather than after maxIdle.
func (sub *redisSubscription) giveBack() {
	sub.mu.Lock()
	ids := sub.back
	sub.back = nil
	sub.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisAnswerTimeout)
	defer cancel()
	args := []any{"xclaim", sub.stream, sub.s.group, sub.s.consumer, 0}
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, "idle", strconv.FormatInt(sub.s.maxIdle.Milliseconds(), 10), "justid")
	if err := sub.s.client.Do(ctx, args...).Err(); err != nil {
		// They are claimed after maxIdle instead.
		sub.s.logger.Error("Cannot give back messages", err, sub.fields.Add(watermill.LogFields{"count": len(ids)}))
	}
}

// dropIdleConsumers removes the group's consumers that have been idle for
// redisConsumerTimeout and own no pending entry, as watermill-redisstream
// does.
func (sub *redisSubscription) dropIdleConsumers(ctx context.Context) {
	consumers, err := sub.s.client.XInfoConsumers(ctx, sub.stream, sub.s.group).Result()
	if err != nil {
		if ctx.Err() == nil {
			sub.s.logger.Error("Cannot list consumers", err, sub.fields)
		}
		return
	}
	for _, c := range consumers {
		if c.Idle < redisConsumerTimeout || c.Pending > 0 || c.Name == sub.s.consumer {
			continue
		}
		if err := sub.s.client.XGroupDelConsumer(ctx, sub.stream, sub.s.group, c.Name).Err(); err != nil && ctx.Err() == nil {
			sub.s.logger.Error("Cannot remove idle consumer", err, sub.fields.Add(watermill.LogFields{"idle_consumer": c.Name}))
		}
	}
}
