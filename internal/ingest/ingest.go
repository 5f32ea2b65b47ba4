package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/store"
)

// Record is one input record, from Kafka or from a dead letter replay.
type Record struct {
	Source  event.Source
	Key     []byte
	Value   []byte
	Headers []event.Header
}

// Pusher makes committed rows reach their rooms, wherever their clients
// are, in the order readers use (seq, below the horizon).
type Pusher interface {
	// Stage runs inside the transaction that stored rows, before it
	// commits; the transaction fails if Stage does. settle is then called
	// exactly once, with whether the transaction committed.
	Stage(ctx context.Context, tx *store.Tx, rows []*event.Row) (settle func(committed bool), err error)
}

// Options configure an Ingestor.
type Options struct {
	Store    *store.Store
	Renderer *event.Renderer
	Pusher   Pusher // nil: store only
	// RepushWindow: rows of a redelivered record are pushed again when they
	// were stored less than this long ago (a crash between commit and push),
	// and not when older (a topic replayed on purpose).
	RepushWindow time.Duration
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
}

// Ingestor handles batches of records.
type Ingestor struct {
	o   Options
	log *slog.Logger
}

// New returns an Ingestor.
func New(o Options) *Ingestor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	return &Ingestor{o: o, log: o.Logger}
}

// Result counts what a batch became.
type Result struct {
	Inserted    int // new rows
	Repushed    int // rows of redelivered records pushed again
	DeadLetters int
	// Dead lists the records that became (or stayed) dead letters.
	Dead []event.Source
}

func (r Result) add(o Result) Result {
	return Result{r.Inserted + o.Inserted, r.Repushed + o.Repushed, r.DeadLetters + o.DeadLetters, append(r.Dead, o.Dead...)}
}

// message is a record that passed validation.
type message struct {
	rec       *Record
	d         *event.Decoded
	content   string
	actionURL string
	rows      []*event.Row // built while preparing when recipients are known (scope users)
}

// Prepared is a batch decoded and rendered, ready to persist. Preparing
// needs no I/O, so the next batch is prepared while this one is stored.
type Prepared struct {
	records []Record
	msgs    []message
	dead    []*event.DeadLetter
}

// Len is the number of records in the batch.
func (p *Prepared) Len() int { return len(p.records) }

// Handle stores a batch and pushes its rows. A nil error means every
// record is settled: stored as rows, found stored already, or kept as a
// dead letter.
func (in *Ingestor) Handle(ctx context.Context, records []Record) (Result, error) {
	return in.Persist(ctx, in.Prepare(records))
}

// Prepare decodes, validates and renders every record of a batch.
func (in *Ingestor) Prepare(records []Record) *Prepared {
	var msgs []message
	var dead []*event.DeadLetter
	for i := range records {
		r := &records[i]
		d, err := event.Decode(r.Value)
		if err != nil {
			dead = append(dead, deadLetter(r, err))
			continue
		}
		content, action, terr := in.o.Renderer.Render(d)
		if terr != nil {
			in.log.Warn("template failed, used the fallback", "eventType", d.EventType, "partition", r.Source.Partition, "offset", r.Source.Offset, "err", terr)
		}
		m := message{rec: r, d: d, content: content, actionURL: action}
		if _, group := d.GroupKey(); !group {
			m.rows = appendRows(nil, m, d.Recipients)
		}
		msgs = append(msgs, m)
	}
	return &Prepared{records: records, msgs: msgs, dead: dead}
}

// Persist stores a prepared batch in one transaction and pushes its rows
// (new ones, and those of a redelivery stored recently) once it commits.
func (in *Ingestor) Persist(ctx context.Context, p *Prepared) (Result, error) {
	records := p.records
	res, err := in.persist(ctx, p.msgs, p.dead)
	if err != nil {
		if store.IsTransient(err) || ctx.Err() != nil || len(records) == 0 {
			return Result{}, err
		}
		return in.isolate(ctx, records, err)
	}
	in.count(res)
	return res, nil
}

// isolate handles the halves of a batch the database rejected, down to the
// single record at fault, which becomes a dead letter.
func (in *Ingestor) isolate(ctx context.Context, records []Record, cause error) (Result, error) {
	if len(records) == 1 {
		r := &records[0]
		in.log.Error("database rejected a record; keeping it as a dead letter", "partition", r.Source.Partition, "offset", r.Source.Offset, "err", cause)
		dl := deadLetter(r, &event.InvalidError{Reason: event.ReasonDBRejected, Detail: cause.Error()})
		res, err := in.persist(ctx, nil, []*event.DeadLetter{dl})
		if err != nil {
			return Result{}, fmt.Errorf("store dead letter: %w", err)
		}
		in.count(res)
		return res, nil
	}
	mid := len(records) / 2
	a, err := in.Persist(ctx, in.Prepare(records[:mid]))
	if err != nil {
		return a, err
	}
	b, err := in.Persist(ctx, in.Prepare(records[mid:]))
	return a.add(b), err
}

// persist runs the batch's one transaction, and has its rows pushed once it
// commits.
func (in *Ingestor) persist(ctx context.Context, msgs []message, dead []*event.DeadLetter) (Result, error) {
	var res Result
	var settle func(bool)
	err := in.o.Store.InWriteTx(ctx, func(tx *store.Tx) error {
		res = Result{}
		var keys []event.ScopeKey
		seen := map[event.ScopeKey]bool{}
		for _, m := range msgs {
			if k, ok := m.d.GroupKey(); ok && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		members, err := tx.Members(ctx, keys)
		if err != nil {
			return err
		}
		allDead := dead
		var rows []*event.Row
		for _, m := range msgs {
			if m.rows != nil {
				for _, r := range m.rows {
					r.Seq = 0 // a retried transaction starts afresh
				}
				rows = append(rows, m.rows...)
				continue
			}
			recipients := members[mustGroup(m.d)]
			if len(recipients) == 0 {
				allDead = append(allDead, deadLetter(m.rec, &event.InvalidError{
					Reason: event.ReasonNoRecipients,
					Detail: fmt.Sprintf("%s scope has no members (add them with signalctl members add)", scopeName(m.d)),
				}))
				continue
			}
			rows = appendRows(rows, m, recipients)
		}
		res.Inserted, err = tx.InsertNotifications(ctx, rows)
		if err != nil {
			return err
		}
		push := rows
		if res.Inserted < len(rows) {
			push, res.Repushed, err = in.withExisting(ctx, tx, rows)
			if err != nil {
				return err
			}
		}
		if err := tx.InsertDeadLetters(ctx, allDead); err != nil {
			return err
		}
		res.DeadLetters = len(allDead)
		for _, d := range allDead {
			res.Dead = append(res.Dead, d.Source)
		}
		dead = allDead
		if in.o.Pusher != nil && len(push) > 0 {
			// Last: nothing may fail between staging and the commit but
			// the commit itself.
			if settle, err = in.o.Pusher.Stage(ctx, tx, push); err != nil {
				return fmt.Errorf("stage pushes: %w", err)
			}
		}
		return nil
	})
	if settle != nil {
		settle(err == nil)
	}
	if err != nil {
		return Result{}, fmt.Errorf("persist batch: %w", err)
	}
	for _, d := range dead {
		in.log.Warn("record kept as dead letter", "reason", d.Reason, "detail", d.Detail, "topic", d.Source.Topic, "partition", d.Source.Partition, "offset", d.Source.Offset)
		in.o.Metrics.DeadLettered.WithLabelValues(d.Reason).Inc()
	}
	return res, nil
}

// withExisting replaces rows that were stored before (a redelivery) by
// their stored version when recent enough to push again, and drops them
// otherwise.
func (in *Ingestor) withExisting(ctx context.Context, tx *store.Tx, rows []*event.Row) ([]*event.Row, int, error) {
	var ids []uuid.UUID
	for _, r := range rows {
		if r.Seq == 0 {
			ids = append(ids, r.ID)
		}
	}
	existing, err := tx.Existing(ctx, ids, time.Now().Add(-in.o.RepushWindow))
	if err != nil {
		return nil, 0, err
	}
	byID := make(map[uuid.UUID]*event.Row, len(existing))
	for _, r := range existing {
		byID[r.ID] = r
	}
	push := make([]*event.Row, 0, len(rows))
	for _, r := range rows {
		switch {
		case r.Seq != 0:
			push = append(push, r)
		case byID[r.ID] != nil:
			push = append(push, byID[r.ID])
		}
	}
	return push, len(existing), nil
}

func (in *Ingestor) count(res Result) {
	in.o.Metrics.Persisted.Add(float64(res.Inserted))
	in.o.Metrics.Repushed.Add(float64(res.Repushed))
}

func appendRows(rows []*event.Row, m message, recipients []string) []*event.Row {
	d := m.d
	key := d.EventKey()
	for _, r := range recipients {
		rows = append(rows, &event.Row{
			ID:          event.NotificationID(m.rec.Source, r),
			RecipientID: r,
			Type:        d.EventType,
			OrganizerID: d.OrganizerID,
			MerchantID:  d.MerchantID,
			ActorID:     d.ActorID,
			Actor:       d.Actor,
			Content:     m.content,
			ActionURL:   m.actionURL,
			Data:        d.CanonicalData,
			OccurredAt:  d.Occurred,
			EventKey:    key,
			Source:      m.rec.Source,
		})
	}
	return rows
}

func deadLetter(r *Record, err error) *event.DeadLetter {
	dl := &event.DeadLetter{Source: r.Source, Key: r.Key, Value: r.Value, Headers: r.Headers, Reason: "invalid", Detail: err.Error()}
	var inv *event.InvalidError
	if errors.As(err, &inv) {
		dl.Reason, dl.Detail = inv.Reason, inv.Detail
	}
	return dl
}

func scopeName(d *event.Decoded) string {
	k, _ := d.GroupKey()
	return k.Scope + " " + k.ID
}

func mustGroup(d *event.Decoded) event.ScopeKey {
	k, _ := d.GroupKey()
	return k
}
