package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
)

// Grouping (notifications.group_window): a recipient's notifications with
// one groupKey collapse into one item. GroupRows runs in the ingest
// transaction, before the rows are inserted: each grouped row either
// starts a group (it is inserted, count 1), or joins the recipient's
// newest item of its group created within the window that is neither read,
// archived nor deleted — an earlier row of the chunk (inserted with the
// count) or a stored item, which takes the new count, latest actors and
// the row's content, actionUrl and data, as an updated change of the
// recipient's stream. The item stays unread and unseen, so the counts
// rise by one per group; a group read (or archived, or deleted) starts a
// new item.
//
// The state rows of every recipient of the chunk are locked first, in
// the order ingest locks them: two transactions grouping for one
// recipient take turns, so one of them sees the other's item.

// group is the item a group's rows join.
type group struct {
	row    *event.Row // the row of this chunk that started it; nil: stored
	id     uuid.UUID
	rcpt   string
	count  int
	actors []event.Actor
	last   *event.Row // the newest row that joined it
}

// GroupRows returns the rows to insert (rows without those that joined a
// group), the ids of the items rows joined (one per row that joined), and
// the pushes of the updated changes of stored items.
func (t *Tx) GroupRows(ctx context.Context, rows []*event.Row, window time.Duration) (keep []*event.Row, joined []uuid.UUID, pushes []event.Push, err error) {
	if window <= 0 || !slices.ContainsFunc(rows, func(r *event.Row) bool { return r.GroupKey != "" }) {
		return rows, nil, nil, nil
	}
	all := make([]target, len(rows))
	for i, r := range rows {
		all[i] = target{id: r.ID, recipient: r.RecipientID}
	}
	states, err := t.lockStates(ctx, all)
	if err != nil {
		return nil, nil, nil, err
	}
	groups, err := t.openGroups(ctx, rows, window)
	if err != nil {
		return nil, nil, nil, err
	}
	seen, err := t.seenBefore(ctx, rows)
	if err != nil {
		return nil, nil, nil, err
	}
	keep = make([]*event.Row, 0, len(rows))
	var joins []groupJoin
	for _, r := range rows {
		item, before := seen[r.ID]
		if before && item != r.ID { // joined an item before
			joined = append(joined, item)
			continue
		}
		if r.GroupKey == "" || before { // not grouped, or stored before: a redelivery (InsertNotifications)
			keep = append(keep, r)
			continue
		}
		key := [2]string{r.RecipientID, r.GroupKey}
		g := groups[key]
		if g == nil {
			r.GroupCount, r.Actors = 1, []event.Actor{r.Actor} // afresh: a retried chunk passes here again
			groups[key] = &group{row: r, id: r.ID, rcpt: r.RecipientID, count: 1, actors: r.Actors}
			keep = append(keep, r)
			continue
		}
		g.count++
		g.actors = event.GroupActors(r.Actor, g.actors)
		g.last = r
		joined = append(joined, g.id)
		joins = append(joins, groupJoin{r.ID, g.id})
		if g.row != nil {
			g.row.GroupCount, g.row.Actors = g.count, g.actors
			g.row.Content, g.row.ActionURL, g.row.Data = r.Content, r.ActionURL, r.Data
		}
	}
	if err := t.recordJoins(ctx, joins); err != nil {
		return nil, nil, nil, err
	}
	pushes, err = t.updateGroups(ctx, groups, states)
	return keep, joined, pushes, err
}

// groupJoin is a notification that joined an item instead of being stored.
type groupJoin struct{ id, item uuid.UUID }

// seenBefore returns which grouped rows were handled before (a record
// delivered again, a repeated request): joined an item (the item's id) or
// stored (their own id).
func (t *Tx) seenBefore(ctx context.Context, rows []*event.Row) (map[uuid.UUID]uuid.UUID, error) {
	var ids []uuid.UUID
	for _, r := range rows {
		if r.GroupKey != "" {
			ids = append(ids, r.ID)
		}
	}
	res, err := t.tx.Query(ctx, `SELECT id, item FROM group_joins WHERE id = ANY($1)
		UNION ALL SELECT id, id FROM notifications WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("look up grouped notifications: %w", err)
	}
	defer res.Close()
	out := map[uuid.UUID]uuid.UUID{}
	for res.Next() {
		var id, item uuid.UUID
		if err := res.Scan(&id, &item); err != nil {
			return nil, fmt.Errorf("look up grouped notifications: %w", err)
		}
		out[id] = item
	}
	return out, res.Err()
}

// recordJoins remembers the rows that joined items.
func (t *Tx) recordJoins(ctx context.Context, joins []groupJoin) error {
	if len(joins) == 0 {
		return nil
	}
	ids, items := make([]uuid.UUID, len(joins)), make([]uuid.UUID, len(joins))
	for i, j := range joins {
		ids[i], items[i] = j.id, j.item
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO group_joins (id, item) SELECT * FROM unnest($1::uuid[], $2::uuid[])
		ON CONFLICT (id) DO NOTHING`, ids, items); err != nil {
		return fmt.Errorf("record group joins: %w", err)
	}
	return nil
}

// openGroups reads the stored items rows may join: per recipient and
// groupKey the newest created within window, when it is neither read,
// archived nor deleted.
func (t *Tx) openGroups(ctx context.Context, rows []*event.Row, window time.Duration) (map[[2]string]*group, error) {
	var rcpts, keys []string
	seen := map[[2]string]bool{}
	for _, r := range rows {
		if k := [2]string{r.RecipientID, r.GroupKey}; r.GroupKey != "" && !seen[k] {
			seen[k] = true
			rcpts, keys = append(rcpts, r.RecipientID), append(keys, r.GroupKey)
		}
	}
	read, _, archived, deleted := stateSQL("n.recipient_id")
	res, err := t.tx.Query(ctx, `SELECT g.id, g.recipient_id, g.group_key, g.count, g.actors FROM unnest($1::text[], $2::text[]) AS u(r, k)
		CROSS JOIN LATERAL (
			SELECT n.id, n.recipient_id, n.group_key, coalesce(n.group_count, 1) AS count, n.actors,
				`+read+` OR `+archived+` OR `+deleted+` AS closed
			FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
			WHERE n.recipient_id = u.r AND n.group_key = u.k AND n.created_at > now() - $3::interval
			ORDER BY n.seq DESC LIMIT 1) g
		WHERE NOT g.closed`, rcpts, keys, window)
	if err != nil {
		return nil, fmt.Errorf("find open groups: %w", err)
	}
	defer res.Close()
	out := map[[2]string]*group{}
	for res.Next() {
		g := &group{}
		var key string
		var actors []byte
		if err := res.Scan(&g.id, &g.rcpt, &key, &g.count, &actors); err != nil {
			return nil, fmt.Errorf("find open groups: %w", err)
		}
		_ = json.Unmarshal(actors, &g.actors)
		out[[2]string{g.rcpt, key}] = g
	}
	return out, res.Err()
}

// updateGroups writes the stored items that rows joined and records an
// updated change for each (a recipient with several gets them one after
// the other).
func (t *Tx) updateGroups(ctx context.Context, groups map[[2]string]*group, states map[string]*lockedState) ([]event.Push, error) {
	var dirty []*group
	for _, g := range groups {
		if g.row == nil && g.last != nil {
			dirty = append(dirty, g)
		}
	}
	if len(dirty) == 0 {
		return nil, nil
	}
	slices.SortFunc(dirty, func(a, b *group) int {
		if c := cmpString(a.rcpt, b.rcpt); c != 0 {
			return c
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	var pushes []event.Push
	for len(dirty) > 0 {
		// One layer: at most one item per recipient.
		var layer, rest []*group
		for i, g := range dirty {
			if i > 0 && dirty[i-1].rcpt == g.rcpt {
				rest = append(rest, g)
			} else {
				layer = append(layer, g)
			}
		}
		p, err := t.writeGroups(ctx, layer, states)
		if err != nil {
			return nil, err
		}
		pushes, dirty = append(pushes, p...), rest
	}
	return pushes, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// writeGroups updates stored items (one per recipient, sorted) and records
// their updated changes.
func (t *Tx) writeGroups(ctx context.Context, layer []*group, states map[string]*lockedState) ([]event.Push, error) {
	n := len(layer)
	ids, counts, actors := make([]uuid.UUID, n), make([]int32, n), make([]string, n)
	contents, actions, datas := make([]string, n), make([]string, n), make([]string, n)
	rcpts, changes := make([]string, n), make([]any, n)
	for i, g := range layer {
		a, _ := json.Marshal(g.actors)
		ids[i], counts[i], actors[i] = g.id, int32(g.count), string(a)
		contents[i], actions[i], datas[i] = g.last.Content, g.last.ActionURL, string(g.last.Data)
		rcpts[i] = g.rcpt
		content, action := g.last.Content, g.last.ActionURL
		changes[i] = event.ContentChange{IDs: []string{g.id.String()}, Count: g.count, Actors: g.actors,
			Content: &content, ActionURL: &action, Data: g.last.Data}
	}
	if _, err := t.tx.Exec(ctx, `UPDATE notifications n SET group_count = u.c, actors = u.a::jsonb,
			content = u.ct, action_url = nullif(u.au, ''), data = u.d::jsonb
		FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(id, c, a, ct, au, d)
		WHERE n.id = u.id`, ids, counts, actors, contents, actions, datas); err != nil {
		return nil, fmt.Errorf("update groups: %w", err)
	}
	return t.recordChanges(ctx, rcpts, states, nil, event.TopicNotificationUpdated, changes)
}
