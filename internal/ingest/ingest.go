package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/tracing"
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
	// Changes stages the changes ingest makes to stored items (a group's
	// item taking another event); nil: stored, not pushed.
	Changes store.Stager
	// GroupWindow is notifications.group_window (0: no grouping).
	GroupWindow time.Duration
	// RepushWindow: rows of a redelivered record are pushed again when they
	// were stored less than this long ago (a crash between commit and push),
	// and not when older (a topic replayed on purpose).
	RepushWindow time.Duration
	// MaxRowsPerTx bounds the rows of one write transaction (plan.go); a
	// batch with more is stored in several, in order, the first of them a
	// quarter of the size. 0: DefaultMaxRowsPerTx.
	MaxRowsPerTx int
	// Retention: a record older than this (by its timestamp) is skipped
	// and counted, never stored: its day may have been removed already,
	// and storing it again would bring removed notifications back. 0 keeps
	// every record.
	Retention time.Duration
	// Limits bound what one record may cost (limits.go); zero values take
	// the defaults.
	Limits  Limits
	Now     func() time.Time // the clock Retention and MaxClockSkew are judged by (default time.Now)
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// DefaultMaxRowsPerTx is MaxRowsPerTx when not set.
const DefaultMaxRowsPerTx = 8192

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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRowsPerTx <= 0 {
		o.MaxRowsPerTx = DefaultMaxRowsPerTx
	}
	o.MaxRowsPerTx = min(o.MaxRowsPerTx, store.MaxRowsPerTx)
	o.Limits = o.Limits.withDefaults()
	return &Ingestor{o: o, log: o.Logger}
}

// Result counts what a batch became.
type Result struct {
	Inserted    int // new rows
	Repushed    int // rows of redelivered records pushed again
	DeadLetters int
	// Dead lists the records that became (or stayed) dead letters.
	Dead []event.Source
	// Expired lists the records skipped as older than the retention, or
	// whose expiresAt had passed.
	Expired []event.Source
}

func (r Result) add(o Result) Result {
	return Result{r.Inserted + o.Inserted, r.Repushed + o.Repushed, r.DeadLetters + o.DeadLetters,
		append(r.Dead, o.Dead...), append(r.Expired, o.Expired...)}
}

// message is a record that passed validation.
type message struct {
	rec       *Record
	d         *event.Decoded
	content   string
	actionURL string
	rowBytes  int          // the estimated size of one of its rows (rowBytes)
	rows      []*event.Row // built while preparing when recipients are known (scope users), up to maxPrebuiltRows
}

// Prepared is a batch decoded and rendered, ready to persist. Preparing
// needs no I/O, so the next batch is prepared while this one is stored.
type Prepared struct {
	records []Record
	msgs    []message
	dead    []*event.DeadLetter
	expired []event.Source
	// plan and stored are how far Persist got, kept when it fails so that
	// a retry resumes at the chunk that failed (plan.go).
	plan   *plan
	stored Result
	// collect: the ids of the rows made are kept in ids (Create).
	collect bool
	ids     []uuid.UUID
}

// Len is the number of records in the batch.
func (p *Prepared) Len() int { return len(p.records) }

// Handle stores a batch and pushes its rows. A nil error means every
// record is settled: stored as rows, found stored already, or kept as a
// dead letter.
func (in *Ingestor) Handle(ctx context.Context, records []Record) (Result, error) {
	return in.Persist(ctx, in.Prepare(records))
}

// Prepare decodes, validates and renders every record of a batch. A
// record outside the limits becomes a dead letter here, before any of its
// rows exists.
func (in *Ingestor) Prepare(records []Record) *Prepared {
	var msgs []message
	var dead []*event.DeadLetter
	var expired []event.Source
	now := in.o.Now()
	cutoff := time.Time{}
	if in.o.Retention > 0 {
		cutoff = now.Add(-in.o.Retention)
	}
	prebuilt, prebuiltBytes := 0, 0
	for i := range records {
		r := &records[i]
		if err := in.o.Limits.checkTimestamp(r.Source.Timestamp, now); err != nil {
			dead = append(dead, deadLetter(r, err))
			continue
		}
		if r.Source.Timestamp.Before(cutoff) {
			expired = append(expired, r.Source)
			continue
		}
		m, err := in.message(r)
		if err != nil {
			dead = append(dead, deadLetter(r, err))
			continue
		}
		if m.d.ExpiredAt(now) { // never shown, never pushed
			expired = append(expired, r.Source)
			continue
		}
		if _, group := m.d.GroupKey(); !group && prebuilt+len(m.d.Recipients) <= maxPrebuiltRows &&
			prebuiltBytes+len(m.d.Recipients)*m.rowBytes <= maxPrebuiltBytes {
			m.rows = appendRows(nil, m, m.d.Recipients)
			prebuilt += len(m.rows)
			prebuiltBytes += len(m.rows) * m.rowBytes
		}
		msgs = append(msgs, m)
	}
	return &Prepared{records: records, msgs: msgs, dead: dead, expired: expired}
}

// message decodes, checks and renders one record. Every limit that does
// not depend on the database is checked here: the size of the value and of
// data, the rendered row, and for a users message its rows.
func (in *Ingestor) message(r *Record) (message, error) {
	l := in.o.Limits
	if len(r.Value) > l.maxValueBytes() {
		return message{}, &event.InvalidError{Reason: event.ReasonTooLarge, Detail: fmt.Sprintf(
			"the record's value is %d bytes: a message with data of ingest.max_data_bytes (%d) takes at most %d", len(r.Value), l.MaxDataBytes, l.maxValueBytes())}
	}
	d, err := event.Decode(r.Value)
	if err != nil {
		return message{}, err
	}
	if n := len(d.CanonicalData); n > l.MaxDataBytes {
		return message{}, &event.InvalidError{Reason: event.ReasonTooLarge, Detail: fmt.Sprintf(
			"data is %d bytes (as JSON), more than ingest.max_data_bytes (%d)", n, l.MaxDataBytes)}
	}
	// The templates may use at most what a row may hold besides data.
	content, action, terr := in.o.Renderer.RenderLimit(d, max(l.MaxRowBytes-len(d.CanonicalData), 1))
	if errors.Is(terr, event.ErrRenderTooLarge) {
		return message{}, terr
	}
	if terr != nil {
		in.log.Warn("template failed, used the fallback", "eventType", d.EventType, "partition", r.Source.Partition, "offset", r.Source.Offset, "err", terr)
	}
	d.DataValue = nil // only the templates read it
	m := message{rec: r, d: d, content: content, actionURL: action}
	m.rowBytes = rowBytes(&m)
	if m.rowBytes > l.MaxRowBytes {
		return message{}, &event.InvalidError{Reason: event.ReasonTooLarge, Detail: fmt.Sprintf(
			"one notification of this record would take about %d bytes, more than ingest.max_row_bytes (%d)", m.rowBytes, l.MaxRowBytes)}
	}
	if _, group := d.GroupKey(); !group {
		if err := l.checkRows(len(d.Recipients), m.rowBytes); err != nil {
			return message{}, err
		}
	}
	return m, nil
}

// Persist stores a prepared batch and pushes its rows (new ones, and those
// of a redelivery stored recently) as each of its transactions commits: one
// transaction, or several for a batch of more than MaxRowsPerTx rows.
func (in *Ingestor) Persist(ctx context.Context, p *Prepared) (Result, error) {
	records := p.records
	// The days of the rows get their partitions first, each in a short
	// transaction of its own: never DDL inside the ingest transaction. A
	// failure here is always retried: it says nothing of the records.
	times := make([]time.Time, 0, 4)
	for _, m := range p.msgs {
		if t := m.rec.Source.Timestamp; len(times) == 0 || !t.Equal(times[len(times)-1]) {
			times = append(times, t)
		}
	}
	if err := in.o.Store.EnsurePartitions(ctx, times); err != nil {
		return Result{}, err
	}
	res, err := in.persist(ctx, p)
	if err != nil {
		if store.IsTransient(err) || ctx.Err() != nil || len(records) == 0 {
			return Result{}, err
		}
		return in.isolate(ctx, records, err)
	}
	res.Expired = p.expired
	in.count(res)
	return res, nil
}

// isolate handles the halves of a batch the database rejected, down to the
// single record at fault, which becomes a dead letter.
func (in *Ingestor) isolate(ctx context.Context, records []Record, cause error) (Result, error) {
	if len(records) == 1 {
		r := &records[0]
		in.log.ErrorContext(tracing.ForRecord(ctx, r.Source), "database rejected a record; keeping it as a dead letter", "partition", r.Source.Partition, "offset", r.Source.Offset, "err", cause)
		dl := deadLetter(r, &event.InvalidError{Reason: event.ReasonDBRejected, Detail: cause.Error()})
		if p := in.Prepare(records); len(p.dead) == 1 { // it was a dead letter already: say why
			dl.Detail += "; the record was a dead letter: " + p.dead[0].Reason + ": " + p.dead[0].Detail
		}
		res, err := in.persist(ctx, &Prepared{dead: []*event.DeadLetter{dl}})
		if err != nil && !store.IsTransient(err) && ctx.Err() == nil {
			in.log.Error("the database rejected the dead letter too; keeping it without the record's bytes", "partition", r.Source.Partition, "offset", r.Source.Offset, "err", err)
			res, err = in.persist(ctx, &Prepared{dead: []*event.DeadLetter{lastResort(dl, err)}})
		}
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

// persist stores the batch chunk by chunk, resuming where an earlier
// attempt stopped, and returns what every chunk stored.
func (in *Ingestor) persist(ctx context.Context, p *Prepared) (Result, error) {
	for p.plan == nil || !p.plan.done() {
		if err := in.storeChunk(ctx, p); err != nil {
			return Result{}, fmt.Errorf("persist batch: %w", err)
		}
	}
	return p.stored, nil
}

// storeChunk runs one write transaction: the first one of a batch also
// resolves it (members, preferences) and stores its dead letters; each
// stores the next chunk of rows and has them pushed once it commits.
func (in *Ingestor) storeChunk(ctx context.Context, p *Prepared) error {
	var (
		pl       = p.plan
		res      Result
		settle   func(bool)
		next, at int
		made     []*event.Row
		joined   []uuid.UUID
		grouped  = &settles{}
	)
	err := in.o.Store.InTx(ctx, func(tx *store.Tx) error {
		res, made, joined = Result{}, nil, nil
		if p.plan == nil {
			var err error
			if pl, err = in.resolve(ctx, tx, p); err != nil {
				return err
			}
			if err := tx.InsertDeadLetters(ctx, pl.dead); err != nil {
				return err
			}
			res.DeadLetters = len(pl.dead)
			for _, d := range pl.dead {
				res.Dead = append(res.Dead, d.Source)
			}
		}
		var rows []*event.Row
		rows, next, at = pl.chunk(in.chunkRows(pl, p.plan == nil))
		var err error
		if rows, joined, err = in.group(ctx, tx, rows, grouped); err != nil {
			return err
		}
		made = rows
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
	grouped.settle(err == nil)
	if err != nil {
		return err
	}
	if p.plan == nil {
		p.plan = pl
		in.resolved(ctx, pl)
	}
	pl.ti, pl.ri = next, at
	p.stored = p.stored.add(res)
	p.collectIDs(made, joined)
	return nil
}

// chunkRows is how many rows the next transaction of pl stores: at most
// MaxRowsPerTx, and a quarter of that for the first of several, so that the
// first members of a big organizer are pushed sooner; a batch that fits in
// one transaction (the common case) stays one.
func (in *Ingestor) chunkRows(pl *plan, first bool) int {
	if first && pl.rows > in.o.MaxRowsPerTx {
		return max(in.o.MaxRowsPerTx/4, 1)
	}
	return in.o.MaxRowsPerTx
}

// resolve reads, in tx, the members of the batch's groups and the
// preferences of its recipients (one round trip), and makes the plan.
func (in *Ingestor) resolve(ctx context.Context, tx *store.Tx, p *Prepared) (*plan, error) {
	var keys []event.ScopeKey
	var users []string
	seen := map[event.ScopeKey]bool{}
	for _, m := range p.msgs {
		if k, ok := m.d.GroupKey(); ok {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			continue
		}
		users = append(users, m.d.Recipients...)
	}
	members, prefs, err := tx.Recipients(ctx, keys, users)
	if err != nil {
		return nil, err
	}
	return newPlan(p.msgs, slices.Clone(p.dead), members, prefs, in.o.Limits), nil
}

// resolved logs and counts what the batch's first transaction settled.
func (in *Ingestor) resolved(ctx context.Context, pl *plan) {
	for _, d := range pl.dead {
		in.log.WarnContext(tracing.ForRecord(ctx, d.Source), "record kept as dead letter", "reason", d.Reason, "detail", d.Detail, "topic", d.Source.Topic, "partition", d.Source.Partition, "offset", d.Source.Offset)
		in.o.Metrics.DeadLettered.WithLabelValues(d.Reason).Inc()
	}
	if pl.muted > 0 {
		in.o.Metrics.Muted.Add(float64(pl.muted))
	}
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
	now := time.Now()
	for _, r := range existing {
		if !r.IsDeleted && (r.ExpiresAt.IsZero() || r.ExpiresAt.After(now)) { // deleted or expired: not pushed again
			byID[r.ID] = r
		}
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
	return push, len(byID), nil
}

func (in *Ingestor) count(res Result) {
	in.o.Metrics.Persisted.Add(float64(res.Inserted))
	in.o.Metrics.Repushed.Add(float64(res.Repushed))
	if len(res.Expired) > 0 {
		in.o.Metrics.Expired.Add(float64(len(res.Expired)))
		in.log.Debug("skipped records older than notifications.retention", "records", len(res.Expired))
	}
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
			EventID:     d.EventID,
			ExpiresAt:   d.Expires,
			GroupKey:    d.Grouping,
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

// lastResort is the form of a dead letter that the database always takes:
// the record's place (topic, partition, offset, timestamp) and what went
// wrong, without key, value and headers, whose sizes and SHA-256 sums the
// detail gives instead. It is used when the database rejected the dead
// letter itself, so that no record can stop a partition.
func lastResort(dl *event.DeadLetter, cause error) *event.DeadLetter {
	detail := fmt.Sprintf("stored without the record's bytes, which the database rejected (%v); key %d bytes (sha256 %x), value %d bytes (sha256 %x), %d headers; %s",
		cause, len(dl.Key), sha256.Sum256(dl.Key), len(dl.Value), sha256.Sum256(dl.Value), len(dl.Headers), dl.Detail)
	return &event.DeadLetter{Source: dl.Source, Reason: event.ReasonDBRejected,
		Detail: event.StorableText(detail, store.MaxDeadLetterDetail)}
}

func scopeName(d *event.Decoded) string {
	k, _ := d.GroupKey()
	return k.Scope + " " + k.ID
}
