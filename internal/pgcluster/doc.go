// Package pgcluster starts and stops a throwaway PostgreSQL cluster with the
// machine's own server binaries (initdb, pg_ctl): the local database of
// `make run` and of the test suite when no SIGNAL_TEST_DATABASE_URL is given.
//
// PostgreSQL refuses to run as root, so as root the binaries run as the
// `postgres` user through runuser and the data folder is handed to it.
package pgcluster
