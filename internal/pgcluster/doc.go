// Package pgcluster starts and stops a throwaway PostgreSQL cluster with the
// machine's own server binaries (initdb, pg_ctl): the local database of
// `make run` and of the test suite when no SIGNAL_TEST_DATABASE_URL is given.
//
// PostgreSQL refuses to run as root, so as root the binaries run as the
// `postgres` user through runuser and the data folder is handed to it.
//
// Only the account that started the cluster may connect: the folder and the
// Unix socket in it are 0700, and TCP (127.0.0.1) needs the postgres role's
// password, generated at the first start and kept in the folder (0600).
// Every URL the package gives carries it.
package pgcluster
