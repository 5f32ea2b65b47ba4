package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

func rowsFor(src event.Source, recipients ...string) []*event.Row {
	var out []*event.Row
	for _, r := range recipients {
		out = append(out, &event.Row{
			ID: event.NotificationID(src, r), RecipientID: r, Type: "PAYMENT_SUCCESS", OrganizerID: "org-1",
			ActorID: "a1", Actor: event.Actor{ID: "a1", Name: "Alice", Type: "user"},
			Content: "hello", Data: json.RawMessage(`{"k":1}`), OccurredAt: src.Timestamp,
			EventKey: []byte("0123456789abcdef"), Source: src,
		})
	}
	return out
}

func insert(t *testing.T, s *store.Store, rows []*event.Row) int {
	t.Helper()
	var times []time.Time
	for _, r := range rows {
		times = append(times, r.Source.Timestamp)
	}
	if err := s.EnsurePartitions(context.Background(), times); err != nil {
		t.Fatal(err)
	}
	var n int
	err := s.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		n, err = tx.InsertNotifications(context.Background(), rows)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInsertNotificationsIsIdempotentPerRecordAndRecipient(t *testing.T) {
	s, _ := pgtest.Open(t)
	ts := time.Now().UTC().Truncate(time.Millisecond)
	a := rowsFor(event.Source{Topic: "t", Partition: 0, Offset: 1, Timestamp: ts}, "u1", "u2")
	b := rowsFor(event.Source{Topic: "t", Partition: 0, Offset: 2, Timestamp: ts}, "u1")
	if n := insert(t, s, append(a, b...)); n != 3 {
		t.Fatalf("first insert stored %d rows, want 3", n)
	}
	// Each recipient's rows take the next positions of its stream, in
	// the batch's order.
	if a[0].Seq != 1 || a[1].Seq != 1 || b[0].Seq != 2 {
		t.Errorf("positions u1 %d, u2 %d, u1 %d; want 1, 1, 2", a[0].Seq, a[1].Seq, b[0].Seq)
	}
	if a[0].CreatedAt.IsZero() {
		t.Error("CreatedAt not set")
	}

	again := append(rowsFor(a[0].Source, "u1", "u2"), rowsFor(b[0].Source, "u1", "u3")...)
	if n := insert(t, s, again); n != 1 {
		t.Fatalf("redelivered batch stored %d rows, want only the new recipient u3", n)
	}
	for i, r := range again {
		if want := map[bool]int64{true: 1, false: 0}[r.RecipientID == "u3"]; r.Seq != want {
			t.Errorf("redelivered row %d (%s) has position %d, want %d", i, r.RecipientID, r.Seq, want)
		}
	}
	var count int
	s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM notifications`).Scan(&count)
	if count != 4 {
		t.Errorf("rows = %d, want 4", count)
	}
}

func TestExistingReturnsStoredRowsCreatedSince(t *testing.T) {
	s, _ := pgtest.Open(t)
	src := event.Source{Topic: "t", Offset: 9, Timestamp: time.Now()}
	rows := rowsFor(src, "u1")
	insert(t, s, rows)
	ctx := context.Background()
	s.Pool.Exec(ctx, `UPDATE notifications SET is_read = true`)
	var got []*event.Row
	err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		got, err = tx.Existing(ctx, []uuid.UUID{rows[0].ID}, time.Now().Add(-time.Minute))
		return err
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("Existing = %v, %v", got, err)
	}
	if !got[0].IsRead || got[0].Content != "hello" || got[0].Actor.Name != "Alice" || got[0].Source != (event.Source{Topic: "t", Offset: 9}) {
		t.Errorf("loaded row = %+v", got[0])
	}
	err = s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		got, err = tx.Existing(ctx, []uuid.UUID{rows[0].ID}, time.Now().Add(time.Minute))
		return err
	})
	if err != nil || len(got) != 0 {
		t.Errorf("rows older than since must not load: %v, %v", got, err)
	}
}

func TestDataTheDatabaseRejectsIsNotTransient(t *testing.T) {
	s, _ := pgtest.Open(t)
	rows := rowsFor(event.Source{Topic: "t", Timestamp: time.Now()}, "u1")
	rows[0].Data = json.RawMessage(`{"a":"\u0000"}`)
	err := s.InTx(context.Background(), func(tx *store.Tx) error {
		_, err := tx.InsertNotifications(context.Background(), rows)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || store.IsTransient(err) {
		t.Fatalf("err = %v: want a non-transient PostgreSQL error", err)
	}
	if !store.IsTransient(errors.New("dial tcp: connection refused")) {
		t.Error("network errors must be transient")
	}
}

func TestDeadLettersAreStoredOncePerRecord(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	dl := &event.DeadLetter{
		Source: event.Source{Topic: "t", Partition: 2, Offset: 7, Timestamp: time.Now()},
		Key:    nil, Value: []byte("not json"), Headers: []event.Header{{Key: "h", Value: []byte{0xff}}},
		Reason: event.ReasonMalformedJSON, Detail: "bad",
	}
	for i := 0; i < 2; i++ {
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.InsertDeadLetters(ctx, []*event.DeadLetter{dl}) }); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var value []byte
	var headers string
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) OVER (), value, headers::text FROM dead_letters`).Scan(&n, &value, &headers); err != nil {
		t.Fatal(err)
	}
	if n != 1 || string(value) != "not json" || !strings.Contains(headers, `"/w=="`) {
		t.Errorf("dead letters = %d, value %q, headers %s", n, value, headers)
	}
}

func TestMembersAddRemoveList(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	org1, m1 := event.ScopeKey{Scope: "org", ID: "org-1"}, event.ScopeKey{Scope: "merchant", ID: "m-1"}
	change := func(key event.ScopeKey, op string, ids ...string) event.MemberCounts {
		t.Helper()
		n, err := s.ChangeMembers(ctx, key, op, store.SliceIDs(ids))
		if err != nil {
			t.Fatalf("%s %v: %v", op, ids, err)
		}
		return n
	}
	if n := change(org1, event.OpAdd, "u2", "u1", "u2"); n.Added != 2 {
		t.Fatalf("add = %+v, want 2 added (a duplicate counts once)", n)
	}
	change(m1, event.OpAdd, "u3")
	if n := change(org1, event.OpAdd, "u2"); n.Added != 0 {
		t.Errorf("adding an existing member counted %d new", n.Added)
	}
	if list, _ := s.ListMembers(ctx, org1, "", 10); strings.Join(list, ",") != "u1,u2" {
		t.Errorf("list = %v", list)
	}
	var got map[event.ScopeKey][]string
	s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		got, err = tx.Members(ctx, []event.ScopeKey{org1, m1, {Scope: "org", ID: "none"}})
		return err
	})
	if strings.Join(got[org1], ",") != "u1,u2" || len(got[m1]) != 1 || len(got[event.ScopeKey{Scope: "org", ID: "none"}]) != 0 {
		t.Errorf("Members = %v", got)
	}
	if n := change(org1, event.OpRemove, "u2", "nobody"); n.Removed != 1 {
		t.Errorf("remove = %+v", n)
	}
	if ids, _ := s.RecipientIDs(ctx, "u", 10); strings.Join(ids, ",") != "u1,u3" {
		t.Errorf("RecipientIDs = %v", ids)
	}
}

func TestMigrateDownAndUpAgain(t *testing.T) {
	url := pgtest.NewDatabase(t)
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.Status()
	if err != nil || st.Version != store.LatestVersion() || st.Dirty || !st.Migrations[0].Applied {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if err := m.Down(0); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(); st.Version != 0 || st.Migrations[0].Applied {
		t.Fatalf("after down: %+v", st)
	}
	s, err := store.Open(context.Background(), url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckSchema(context.Background()); err == nil || !strings.Contains(err.Error(), "signalctl migrate up") {
		t.Errorf("CheckSchema on an empty database = %v, want advice to migrate up", err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if err := m.Up(); err != nil {
		t.Errorf("a second up must be a no-op: %v", err)
	}
	if err := s.CheckSchema(context.Background()); err != nil {
		t.Error(err)
	}
	if err := m.Force(1); err != nil {
		t.Error(err)
	}
}

func TestEnsureDatabaseCreatesAMissingDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	other := strings.Replace(url, "/signal_t_", "/signal_e_", 1)
	ctx := context.Background()
	created, err := store.EnsureDatabase(ctx, other)
	if err != nil || !created {
		t.Fatalf("EnsureDatabase = %v, %v", created, err)
	}
	t.Cleanup(func() {
		s, _ := store.Open(ctx, url, 1)
		s.Pool.Exec(ctx, "DROP DATABASE IF EXISTS "+other[strings.LastIndex(other, "/")+1:strings.Index(other, "?")]+" WITH (FORCE)")
		s.Close()
	})
	if created, err := store.EnsureDatabase(ctx, other); err != nil || created {
		t.Errorf("second EnsureDatabase = %v, %v", created, err)
	}
}

func TestRedactHidesPasswords(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db":        "postgres://u:xxxxx@h/db",
		"postgres://u@h/db":               "postgres://u@h/db",
		"host=h user=u password=secret x": "host=h user=u password=xxxxx",
	} {
		if got := store.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
