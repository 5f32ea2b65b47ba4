package daemon

import (
	"context"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// revokeOnRemove turns on members.revoke_on_remove: the store stages the
// revocations through the relay, like every change of a stream.
func revokeOnRemove(m config.Members, st *store.Store, rel *relay.Relay) {
	if m.RevokeOnRemove {
		st.RevokeOnRemove(stager(rel.Stage))
	}
}

// notifier creates notifications over REST by the ingest path: the
// request is a record whose source is its Idempotency-Key's row in
// notify_requests (number and time), so a repeat builds the same ids and
// stores nothing new (the primary key), on any instance.
type notifier struct {
	store  *store.Store
	ingest *ingest.Ingestor
	stage  store.Stager
}

func (n notifier) Retract(ctx context.Context, eventID string) (int, error) {
	return n.store.RetractEvent(ctx, eventID, n.stage)
}

func (n notifier) Update(ctx context.Context, eventID string, p event.EventPatch) (int, error) {
	return n.store.UpdateEvent(ctx, eventID, p, n.stage)
}

func (n notifier) Create(ctx context.Context, key string, value []byte) ([]uuid.UUID, error) {
	// Validate first: a refused body takes no key, so it can be fixed and
	// sent again with the same one.
	if _, err := event.Decode(value); err != nil {
		return nil, err
	}
	req, err := n.store.ClaimNotifyKey(ctx, key)
	if err != nil {
		return nil, err
	}
	if req.IDs != nil {
		return req.IDs, nil
	}
	rec := ingest.Record{
		Source: event.Source{Topic: ingest.RESTTopic, Offset: req.ID, Timestamp: req.At},
		Key:    []byte(key), Value: value,
	}
	ids, err := n.ingest.Create(ctx, rec)
	if err != nil {
		return nil, err
	}
	return ids, n.store.FinishNotifyKey(ctx, key, ids)
}
