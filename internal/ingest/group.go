package ingest

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
)

// settles collects the settle functions of what a transaction staged.
type settles []func(bool)

func (s *settles) add(f func(bool)) {
	if f != nil {
		*s = append(*s, f)
	}
}

// settle runs and forgets them (a retried transaction stages afresh).
func (s *settles) settle(committed bool) {
	for _, f := range *s {
		f(committed)
	}
	*s = nil
}

// group collapses the chunk's grouped rows (store.GroupRows) and stages the
// updated changes of the stored items they joined, whose settle goes to
// into. It returns the rows to insert and the ids of the items joined.
func (in *Ingestor) group(ctx context.Context, tx *store.Tx, rows []*event.Row, into *settles) ([]*event.Row, []uuid.UUID, error) {
	keep, joined, pushes, err := tx.GroupRows(ctx, rows, in.o.GroupWindow)
	if err != nil || len(pushes) == 0 || in.o.Changes == nil {
		return keep, joined, err
	}
	settle, err := in.o.Changes(ctx, tx, pushes)
	if err != nil {
		return nil, nil, fmt.Errorf("stage group changes: %w", err)
	}
	into.add(settle)
	return keep, joined, nil
}
