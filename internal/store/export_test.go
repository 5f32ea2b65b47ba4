package store

import "github.com/jackc/pgx/v5"

// Exported for the tests of package store_test.
var (
	ListSQL             = listSQL
	SelectRecipientRows = selectRecipientRows
	// RecountSQL is the query that counts a recipient's notifications.
	RecountSQL = recountSQL
)

// Raw is the transaction itself, for tests that add statements of their
// own to a store transaction (e.g. one that records its commit order).
func (t *Tx) Raw() pgx.Tx { return t.tx }
