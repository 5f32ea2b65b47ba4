// Package pgtest gives tests a real, freshly migrated PostgreSQL database.
//
// The server is the one at SIGNAL_TEST_DATABASE_URL when set (`make test`
// starts one for the whole run), otherwise a throwaway cluster this test
// binary starts itself with the machine's PostgreSQL binaries. Each test gets
// its own database, copied from a migrated template and dropped afterwards.
package pgtest
