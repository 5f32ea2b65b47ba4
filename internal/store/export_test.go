package store

// Exported for the tests of package store_test.
var (
	ListSQL             = listSQL
	SelectRecipientRows = selectRecipientRows
)
