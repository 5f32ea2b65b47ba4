package deadletter

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// DefaultPageSize is how many dead letters one step of a replay handles.
const DefaultPageSize = 500

// Selection says which waiting dead letters to replay: the ones with IDs,
// or every one (of Reason, when set).
type Selection struct {
	IDs    []int64
	Reason string
}

// Result is what a replay did.
type Result struct {
	// Selected is how many dead letters were waiting when the replay began.
	Selected      int            `json:"selected"`
	Replayed      []int64        `json:"replayed"`
	StillDead     []int64        `json:"stillDead"`
	Notifications int            `json:"notifications"`
	Reasons       map[string]int `json:"stillDeadByReason"`
}

// Done is how many dead letters the replay handled so far.
func (r *Result) Done() int { return len(r.Replayed) + len(r.StillDead) }

// NotWaitingError names requested ids that are not waiting dead letters
// (unknown, or replayed already).
type NotWaitingError struct{ IDs []int64 }

func (e *NotWaitingError) Error() string {
	s := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		s[i] = strconv.FormatInt(id, 10)
	}
	return "no waiting dead letter with id " + strings.Join(s, ", ")
}

// Replayer replays dead letters through an Ingestor, and those of the
// members topic through the membership feed.
type Replayer struct {
	Store    *store.Store
	Ingestor *ingest.Ingestor
	// Members applies records of MembersTopic (nil: no members topic).
	Members      *ingest.MemberFeed
	MembersTopic string
	// PageSize is how many dead letters are handled, and held in memory, at
	// once (default DefaultPageSize).
	PageSize int
	// Progress, when set, is called after each page with the running result.
	Progress func(r *Result)
}

// Replay puts the selected dead letters through the pipeline again. Those
// that become notifications are marked replayed; the others stay waiting,
// with their new reason. When ctx ends it stops after the page in hand and
// returns what it did with an error wrapping ctx's cause.
func (rp *Replayer) Replay(ctx context.Context, sel Selection) (Result, error) {
	res := Result{Replayed: []int64{}, StillDead: []int64{}, Reasons: map[string]int{}}
	filter := store.DeadLetterFilter{IDs: sel.IDs, Reason: sel.Reason, Limit: rp.PageSize}
	if filter.Limit <= 0 {
		filter.Limit = DefaultPageSize
	}
	n, upTo, err := rp.Store.WaitingDeadLetters(ctx, filter)
	if err != nil {
		return res, err
	}
	if len(sel.IDs) > 0 && n < len(uniq(sel.IDs)) {
		return res, rp.notWaiting(ctx, sel.IDs)
	}
	res.Selected = n
	for after := int64(0); ; {
		if ctx.Err() != nil {
			return res, fmt.Errorf("stopped after %d of %d dead letters: %w", res.Done(), res.Selected, context.Cause(ctx))
		}
		// A page once started is finished: stored, pushed and marked.
		pageCtx := context.WithoutCancel(ctx)
		page, err := rp.Store.PageDeadLetters(pageCtx, filter, after, upTo)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		if err := rp.replayPage(pageCtx, page, &res); err != nil {
			return res, fmt.Errorf("replay (after %d of %d): %w", res.Done(), res.Selected, err)
		}
		after = page[len(page)-1].ID
		if rp.Progress != nil {
			rp.Progress(&res)
		}
	}
}

func (rp *Replayer) replayPage(ctx context.Context, page []*event.DeadLetter, res *Result) error {
	records := make([]ingest.Record, len(page))
	for i, d := range page {
		records[i] = ingest.Record{Source: d.Source, Key: d.Key, Value: d.Value, Headers: d.Headers}
	}
	r, err := rp.handle(ctx, records)
	if err != nil {
		return err
	}
	dead := make(map[event.Source]bool, len(r.Dead))
	for _, s := range r.Dead {
		dead[s] = true
	}
	var done, still []int64
	for _, d := range page {
		if dead[d.Source] {
			still = append(still, d.ID)
		} else {
			done = append(done, d.ID)
		}
	}
	if err := rp.Store.MarkReplayed(ctx, done); err != nil {
		return err
	}
	res.Replayed = append(res.Replayed, done...)
	res.StillDead = append(res.StillDead, still...)
	res.Notifications += r.Inserted + r.Repushed
	if len(still) > 0 {
		// Their reason may have changed: read it back.
		list, err := rp.Store.ListDeadLetters(ctx, store.DeadLetterFilter{IDs: still, Limit: len(still)})
		if err != nil {
			return err
		}
		for _, d := range list {
			res.Reasons[d.Reason]++
		}
	}
	return nil
}

// handle sends each record to the handler of its topic: membership
// changes to the member feed, the rest to ingest.
func (rp *Replayer) handle(ctx context.Context, records []ingest.Record) (ingest.Result, error) {
	var notes, members []ingest.Record
	for _, r := range records {
		if rp.Members != nil && rp.MembersTopic != "" && r.Source.Topic == rp.MembersTopic {
			members = append(members, r)
		} else {
			notes = append(notes, r)
		}
	}
	var res ingest.Result
	if len(notes) > 0 {
		var err error
		if res, err = rp.Ingestor.Handle(ctx, notes); err != nil {
			return res, err
		}
	}
	if len(members) == 0 {
		return res, nil
	}
	m, err := rp.Members.Handle(ctx, members)
	res.DeadLetters += m.DeadLetters
	res.Dead = append(res.Dead, m.Dead...)
	return res, err
}

func (rp *Replayer) notWaiting(ctx context.Context, ids []int64) error {
	list, err := rp.Store.ListDeadLetters(ctx, store.DeadLetterFilter{IDs: ids, Limit: len(ids)})
	if err != nil {
		return err
	}
	found := map[int64]bool{}
	for _, d := range list {
		found[d.ID] = true
	}
	var missing []int64
	for _, id := range uniq(ids) {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return &NotWaitingError{IDs: missing}
}

func uniq(ids []int64) []int64 {
	out := append([]int64(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	n := 0
	for i, id := range out {
		if i == 0 || id != out[n-1] {
			out[n] = id
			n++
		}
	}
	return out[:n]
}

// Pusher sends replayed notifications to the instances holding their rooms,
// inside the transaction that stores them (the replaying process holds no
// clients itself): they are pushed if and only if it commits.
type Pusher struct {
	Publisher relay.Publisher
}

// Stage implements ingest.Pusher.
func (p Pusher) Stage(ctx context.Context, tx *store.Tx, rows []*event.Row) (func(bool), error) {
	return p.Publisher.StageRows(ctx, tx, rows)
}
