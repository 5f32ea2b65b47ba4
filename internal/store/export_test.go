package store

// Exported for the tests of package store_test.
var (
	ListSQL             = listSQL
	SelectRecipientRows = selectRecipientRows
)

// CountsSQL is the counting query.
var CountsSQL = countsSQL
