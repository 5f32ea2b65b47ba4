package ingest

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
)

// RESTTopic is the source topic of notifications created with POST
// /notifications: their record is the request, numbered by its
// Idempotency-Key (store.ClaimNotifyKey).
const RESTTopic = "signal.rest"

// Create makes the notifications of one message that did not come from
// Kafka (POST /notifications) by the path of a Kafka record: validation,
// recipients, preferences, templates, one row per recipient, the push once
// committed. It returns the ids of the rows made (a recipient who mutes the
// message gets none), or the *event.InvalidError that would have made the
// record a dead letter. A record with the same source made again (the same
// Idempotency-Key) finds its rows stored and makes none.
func (in *Ingestor) Create(ctx context.Context, rec Record) ([]uuid.UUID, error) {
	p := in.Prepare([]Record{rec})
	if len(p.dead) > 0 {
		return nil, invalidOf(p.dead[0])
	}
	if len(p.expired) > 0 {
		return nil, &event.InvalidError{Reason: event.ReasonInvalidField, Detail: "expiresAt is not in the future"}
	}
	p.collect = true
	res, err := in.Persist(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("create notifications: %w", err)
	}
	if res.DeadLetters > 0 && p.plan != nil && len(p.plan.dead) > 0 {
		return nil, invalidOf(p.plan.dead[0]) // kept as a dead letter too, for operators
	}
	return p.ids, nil
}

func invalidOf(d *event.DeadLetter) error {
	return &event.InvalidError{Reason: d.Reason, Detail: d.Detail}
}

// collectIDs notes the ids of a committed chunk's rows when the batch
// collects them (Create).
func (p *Prepared) collectIDs(rows []*event.Row, joined []uuid.UUID) {
	if !p.collect {
		return
	}
	for _, r := range rows {
		p.ids = append(p.ids, r.ID)
	}
	p.ids = append(p.ids, joined...)
}
