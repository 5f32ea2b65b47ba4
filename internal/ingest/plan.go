package ingest

import (
	"github.com/signal-notify/signal/internal/event"
)

// Big organizations and preferences.
//
// A batch is bounded by records (kafka.batch_size), but one record to an
// organizer of 10,000 members is 10,000 rows. So a batch is resolved once
// — its groups' members and its recipients' preferences, as of the first
// transaction — into a plan, and the plan's rows are then built and stored
// a chunk of at most MaxRowsPerTx at a time, one write transaction per
// chunk, in order; when there are several, the first is a quarter of the
// size (chunkRows). Each chunk's pushes are staged with it, so clients get
// the first rows as soon as the first chunk commits, and memory holds one
// chunk's rows and frames, not the batch's. The offsets are committed once
// the last chunk is stored (the consumer commits after Persist returns).
//
// A retry (a transient failure) resumes at the chunk that failed with the
// same plan: committed chunks are neither stored nor pushed again. A
// redelivery after a crash rebuilds the same ids (record and recipient),
// so committed rows are found, not doubled.

// maxPrebuiltRows bounds the rows Prepare builds ahead for users messages
// (off the persist stage's CPU); messages past it get their rows built
// chunk by chunk like group messages.
const maxPrebuiltRows = 20000

// target is what one message becomes once resolved: its rows (built by
// Prepare) or the recipients to build them for, preferences applied.
type target struct {
	m     *message
	rows  []*event.Row
	rcpts []string
}

func (t *target) len() int {
	if t.rows != nil {
		return len(t.rows)
	}
	return len(t.rcpts)
}

// appendRange appends the target's rows [from, to).
func (t *target) appendRange(rows []*event.Row, from, to int) []*event.Row {
	if t.rows == nil {
		return appendRows(rows, *t.m, t.rcpts[from:to])
	}
	for _, r := range t.rows[from:to] {
		r.Seq = 0 // a retried transaction starts afresh
		rows = append(rows, r)
	}
	return rows
}

// plan is a resolved batch and how far it is stored.
type plan struct {
	targets []target // only targets with rows
	rows    int      // in all targets
	dead    []*event.DeadLetter
	muted   int // rows not made because their recipient muted them
	// maxBytes bounds the rows of one chunk by their size (rowBytes), so
	// that a chunk of large rows holds no more memory than one of small
	// ones; 0: no bound. A chunk has at least one row.
	maxBytes int
	// The next row to store: targets[ti], row ri.
	ti, ri int
}

func (p *plan) done() bool { return p.ti >= len(p.targets) }

// chunk builds the next chunk's rows, at most maxRows and p.maxBytes, and
// says where the one after it starts. The plan moves on only when the
// chunk is committed.
func (p *plan) chunk(maxRows int) (rows []*event.Row, ti, ri int) {
	ti, ri = p.ti, p.ri
	bytes := 0
	for ti < len(p.targets) && len(rows) < maxRows {
		t := &p.targets[ti]
		n := min(t.len()-ri, maxRows-len(rows))
		if p.maxBytes > 0 {
			rb := max(t.m.rowBytes, 1)
			if fit := (p.maxBytes - bytes) / rb; fit < n {
				n = max(fit, 0)
			}
			if n == 0 {
				if len(rows) > 0 {
					break
				}
				n = 1
			}
			bytes += n * rb
		}
		rows = t.appendRange(rows, ri, ri+n)
		if ri += n; ri == t.len() {
			ti, ri = ti+1, 0
		}
	}
	return rows, ti, ri
}

// newPlan resolves msgs with the groups' members and the recipients'
// preferences: a group without members makes a no_recipients dead letter
// (after dead), a group too large for one record (l.checkRows) a dead
// letter of its reason, a muted recipient no row.
func newPlan(msgs []message, dead []*event.DeadLetter, members map[event.ScopeKey][]string, prefs map[string]*event.Preferences, l Limits) *plan {
	p := &plan{dead: dead, maxBytes: maxBytesPerTx}
	rcptOf := func(r string) string { return r }
	rowRcpt := func(r *event.Row) string { return r.RecipientID }
	for i := range msgs {
		m := &msgs[i]
		t := target{m: m}
		switch k, group := m.d.GroupKey(); {
		case group:
			if len(members[k]) == 0 {
				p.dead = append(p.dead, deadLetter(m.rec, &event.InvalidError{
					Reason: event.ReasonNoRecipients,
					Detail: scopeName(m.d) + " scope has no members (add them with PUT /memberships, signalctl members add or the members topic)",
				}))
				continue
			}
			if err := l.checkRows(len(members[k]), m.rowBytes); err != nil {
				p.dead = append(p.dead, deadLetter(m.rec, err))
				continue
			}
			t.rcpts = unmuted(p, prefs, m.d, members[k], rcptOf)
		case m.rows != nil:
			t.rows = unmuted(p, prefs, m.d, m.rows, rowRcpt)
		default:
			t.rcpts = unmuted(p, prefs, m.d, m.d.Recipients, rcptOf)
		}
		if t.len() > 0 {
			p.targets = append(p.targets, t)
			p.rows += t.len()
		}
	}
	return p
}

// unmuted returns the items whose recipient does not mute d, counting the
// others in p.muted. It returns list itself when nobody mutes d, and a
// copy otherwise (list is kept as it is for a retry).
func unmuted[T any](p *plan, prefs map[string]*event.Preferences, d *event.Decoded, list []T, rcpt func(T) string) []T {
	if len(prefs) == 0 {
		return list
	}
	var out []T // nil until the first muted item
	for i, x := range list {
		if pr := prefs[rcpt(x)]; pr != nil && pr.Mutes(d.EventType, d.OrganizerID, d.MerchantID) {
			if out == nil {
				out = append(make([]T, 0, len(list)), list[:i]...)
			}
			p.muted++
			continue
		}
		if out != nil {
			out = append(out, x)
		}
	}
	if out == nil {
		return list
	}
	return out
}
