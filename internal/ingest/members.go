package ingest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/store"
)

// MemberFeed applies records of the optional members.topic (the
// organization service's membership changes, event.MemberChange): each
// batch in one transaction, in record order, so the changes of one group
// (one key, one partition) apply in the order they were produced. A record
// that is not a valid change is kept as a dead letter like any other.
//
// Ordering with activity events is "as of ingest time": an event goes to
// the members its batch reads when it is stored, whatever the record
// offsets of the two topics.
type MemberFeed struct {
	st  *store.Store
	m   *metrics.Metrics
	log *slog.Logger
}

// NewMemberFeed returns a MemberFeed writing to st.
func NewMemberFeed(st *store.Store, m *metrics.Metrics, log *slog.Logger) *MemberFeed {
	if m == nil {
		m = metrics.New()
	}
	if log == nil {
		log = slog.Default()
	}
	return &MemberFeed{st: st, m: m, log: log}
}

// PreparedChanges is a batch of the members topic, decoded.
type PreparedChanges struct {
	records []Record
	changes []*event.MemberChange
	dead    []*event.DeadLetter
}

// Prepare decodes and validates every record (no I/O).
func (f *MemberFeed) Prepare(records []Record) *PreparedChanges {
	p := &PreparedChanges{records: records}
	for i := range records {
		c, err := event.DecodeMemberChange(records[i].Value)
		if err != nil {
			p.dead = append(p.dead, deadLetter(&records[i], err))
			continue
		}
		p.changes = append(p.changes, c)
	}
	return p
}

// Handle applies a batch.
func (f *MemberFeed) Handle(ctx context.Context, records []Record) (Result, error) {
	return f.Persist(ctx, f.Prepare(records))
}

// Persist applies the changes and stores the dead letters in one
// transaction. A transient failure is returned (the consumer retries the
// batch); a batch the database rejects is split down to the record at
// fault, which becomes a db_rejected dead letter.
func (f *MemberFeed) Persist(ctx context.Context, p *PreparedChanges) (Result, error) {
	err := f.st.InTx(ctx, func(tx *store.Tx) error {
		counts, err := tx.ApplyMemberChanges(ctx, p.changes)
		if err != nil {
			return err
		}
		for i, c := range p.changes {
			f.log.Debug("membership change applied", "scope", c.Scope, "scopeId", c.ScopeID, "op", c.Op,
				"recipients", len(c.RecipientIDs), "added", counts[i].Added, "removed", counts[i].Removed)
		}
		return tx.InsertDeadLetters(ctx, p.dead)
	})
	if err != nil {
		if store.IsTransient(err) || ctx.Err() != nil || len(p.records) == 0 {
			return Result{}, fmt.Errorf("apply membership changes: %w", err)
		}
		return f.isolate(ctx, p.records, err)
	}
	for _, c := range p.changes {
		f.m.MemberChanges.WithLabelValues(c.Op).Inc()
	}
	res := Result{DeadLetters: len(p.dead)}
	for _, d := range p.dead {
		res.Dead = append(res.Dead, d.Source)
		f.log.Warn("membership record kept as dead letter", "reason", d.Reason, "detail", d.Detail, "topic", d.Source.Topic, "partition", d.Source.Partition, "offset", d.Source.Offset)
		f.m.DeadLettered.WithLabelValues(d.Reason).Inc()
	}
	return res, nil
}

func (f *MemberFeed) isolate(ctx context.Context, records []Record, cause error) (Result, error) {
	if len(records) == 1 {
		r := &records[0]
		f.log.Error("database rejected a membership record; keeping it as a dead letter", "partition", r.Source.Partition, "offset", r.Source.Offset, "err", cause)
		dl := deadLetter(r, &event.InvalidError{Reason: event.ReasonDBRejected, Detail: cause.Error()})
		if p := f.Prepare(records); len(p.dead) == 1 { // it was a dead letter already: say why
			dl.Detail += "; the record was a dead letter: " + p.dead[0].Reason + ": " + p.dead[0].Detail
		}
		res, err := f.Persist(ctx, &PreparedChanges{dead: []*event.DeadLetter{dl}})
		if err != nil && !store.IsTransient(err) && ctx.Err() == nil {
			f.log.Error("the database rejected the dead letter too; keeping it without the record's bytes", "partition", r.Source.Partition, "offset", r.Source.Offset, "err", err)
			res, err = f.Persist(ctx, &PreparedChanges{dead: []*event.DeadLetter{lastResort(dl, err)}})
		}
		return res, err
	}
	mid := len(records) / 2
	a, err := f.Handle(ctx, records[:mid])
	if err != nil {
		return a, err
	}
	b, err := f.Handle(ctx, records[mid:])
	return a.add(b), err
}
