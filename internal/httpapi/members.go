package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
)

// Membership API limits.
const (
	// MaxMembershipBody bounds a membership body: 1,000,000 ids of 64
	// bytes. The body streams into the database, so its size costs no
	// memory.
	MaxMembershipBody = 64 << 20
	// MaxMembersPerRequest bounds the ids of one body.
	MaxMembersPerRequest = 1_000_000
	DefaultMemberPage    = 100
	MaxMemberPage        = 1000
)

// Memberships changes and reads who belongs to an organizer or a merchant.
type Memberships interface {
	// ChangeMembers applies op (event.OpAdd, OpRemove, OpReplace) with the
	// ids next yields until io.EOF; an error of next is returned as it is.
	ChangeMembers(ctx context.Context, key event.ScopeKey, op string, next func() (string, error)) (event.MemberCounts, error)
	ListMembers(ctx context.Context, key event.ScopeKey, after string, limit int) ([]string, error)
	ScopeIDs(ctx context.Context, scope, after string, limit int) ([]string, error)
}

// Preferences reads and replaces what recipients mute.
type Preferences interface {
	Preferences(ctx context.Context, recipient string) (event.Preferences, error)
	SetPreferences(ctx context.Context, recipient string, p event.Preferences) error
}

// badInput is a request the client must fix (400).
type badInput struct{ msg string }

func (e *badInput) Error() string { return e.msg }

func badInputf(format string, args ...any) error { return &badInput{fmt.Sprintf(format, args...)} }

// groupOf reads and checks {scope} and {scopeId}; it has answered when it
// returns false.
func groupOf(w http.ResponseWriter, r *http.Request) (event.ScopeKey, bool) {
	scope, ok := scopeOf(w, r)
	if !ok {
		return event.ScopeKey{}, false
	}
	id := r.PathValue("scopeId")
	if err := event.ValidateID("scopeId", id); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return event.ScopeKey{}, false
	}
	return event.ScopeKey{Scope: scope, ID: id}, true
}

func scopeOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	scope := r.PathValue("scope")
	if !event.IsGroupScope(scope) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("scope must be org or merchant, got %q", scope))
		return "", false
	}
	return scope, true
}

// replaceMembers streams the body into the group: PUT is idempotent, the
// group is exactly the body's ids afterwards.
func (a *api) replaceMembers(w http.ResponseWriter, r *http.Request) {
	a.changeMembers(w, r, event.OpReplace)
}

func (a *api) addMembers(w http.ResponseWriter, r *http.Request) { a.changeMembers(w, r, event.OpAdd) }

func (a *api) removeMembers(w http.ResponseWriter, r *http.Request) {
	a.changeMembers(w, r, event.OpRemove)
}

func (a *api) changeMembers(w http.ResponseWriter, r *http.Request, op string) {
	key, ok := groupOf(w, r)
	if !ok {
		return
	}
	ids, release, err := a.readMembers(w, r)
	defer release()
	if err != nil {
		a.membershipError(w, r, err)
		return
	}
	n, err := a.Memberships.ChangeMembers(r.Context(), key, op, store.SliceIDs(ids))
	if err != nil {
		a.membershipError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, counts(op, n))
}

// MaxMembershipBytesInFlight bounds the membership bodies this instance
// holds at once while they arrive (each at most MaxMembershipBody).
const MaxMembershipBytesInFlight = 4 * MaxMembershipBody

// bodyWait bounds how long a membership body waits for room among the
// bodies in flight before it is refused (503, Retry-After).
const bodyWait = 5 * time.Second

// errBusy refuses a body when MaxMembershipBytesInFlight is taken.
var errBusy = errors.New("too many membership bodies in flight")

// readMembers reads and checks every id of a membership body before the
// change takes a pooled database connection or the group's lock: a client
// that sends its body slowly holds memory for it (within
// MaxMembershipBytesInFlight for all of them), never the pool. (Until
// issue 20 the body streamed into the database: ten slow bodies held the
// whole pool for http.read_timeout.) release gives the memory back.
func (a *api) readMembers(w http.ResponseWriter, r *http.Request) (ids []string, release func(), err error) {
	br := &budgetReader{r: http.MaxBytesReader(w, r.Body, MaxMembershipBody), sem: a.bodies, ctx: r.Context()}
	list := &idList{dec: json.NewDecoder(&utf8Reader{r: br})}
	for {
		id, err := list.next()
		if errors.Is(err, io.EOF) {
			return ids, br.release, nil
		}
		if err != nil {
			return nil, br.release, err
		}
		ids = append(ids, id)
	}
}

// budgetReader takes from sem, within bodyWait, as many units as the bytes
// it reads, and gives them back on release.
type budgetReader struct {
	r    io.Reader
	sem  *semaphore.Weighted
	ctx  context.Context
	held int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		ctx, cancel := context.WithTimeout(b.ctx, bodyWait)
		defer cancel()
		if aerr := b.sem.Acquire(ctx, int64(n)); aerr != nil {
			return 0, errBusy
		}
		b.held += int64(n)
	}
	return n, err
}

func (b *budgetReader) release() {
	if b.held > 0 {
		b.sem.Release(b.held)
		b.held = 0
	}
}

// removeMember removes one recipient; removing one that is not a member
// is not an error ({"removed":0}): a sync may repeat itself.
func (a *api) removeMember(w http.ResponseWriter, r *http.Request) {
	key, ok := groupOf(w, r)
	if !ok {
		return
	}
	id := r.PathValue("recipientId")
	if err := event.ValidateID("recipientId", id); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	done := false
	n, err := a.Memberships.ChangeMembers(r.Context(), key, event.OpRemove, func() (string, error) {
		if done {
			return "", io.EOF
		}
		done = true
		return id, nil
	})
	if err != nil {
		a.membershipError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, counts(event.OpRemove, n))
}

func counts(op string, n event.MemberCounts) map[string]int64 {
	switch op {
	case event.OpAdd:
		return map[string]int64{"added": n.Added}
	case event.OpRemove:
		return map[string]int64{"removed": n.Removed}
	}
	return map[string]int64{"added": n.Added, "removed": n.Removed, "members": n.Members}
}

func (a *api) membershipError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badInput
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, CodeBadRequest, bad.msg)
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxMembershipBody))
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the server holds as many membership bodies as it may: retry later")
	case r.Context().Err() == nil && isReadError(err):
		writeError(w, http.StatusBadRequest, CodeBadRequest, "cannot read the body: "+err.Error())
	default:
		a.unavailable(w, r, "cannot change the memberships", err)
	}
}

// isReadError tells a failure to read the body (a timeout, a connection
// cut) from one of the database: both reach membershipError.
func isReadError(err error) bool {
	var re *readError
	return errors.As(err, &re)
}

// listMembers is one page of a group's members, in recipient id order.
func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	key, ok := groupOf(w, r)
	if !ok {
		return
	}
	a.idPage(w, r, func(after string, limit int) ([]string, error) {
		return a.Memberships.ListMembers(r.Context(), key, after, limit)
	})
}

// listScopeIDs is one page of the ids of a scope's groups that have members.
func (a *api) listScopeIDs(w http.ResponseWriter, r *http.Request) {
	scope, ok := scopeOf(w, r)
	if !ok {
		return
	}
	a.idPage(w, r, func(after string, limit int) ([]string, error) {
		return a.Memberships.ScopeIDs(r.Context(), scope, after, limit)
	})
}

type idPageBody struct {
	Items      []string `json:"items"`
	NextCursor *string  `json:"nextCursor"`
}

func (a *api) idPage(w http.ResponseWriter, r *http.Request, list func(after string, limit int) ([]string, error)) {
	q := r.URL.Query()
	limit := DefaultMemberPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxMemberPage {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", MaxMemberPage))
			return
		}
		limit = n
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) < 2 || b[0] != 'm' {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor is not one this API returned")
			return
		}
		after = string(b[1:])
		// Decoded bytes are the client's: an id this API never returned
		// (NUL, invalid UTF-8) would make the database fail.
		if event.ValidateID("cursor", after) != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor is not one this API returned")
			return
		}
	}
	ids, err := list(after, limit+1)
	if err != nil {
		a.unavailable(w, r, "cannot list memberships", err)
		return
	}
	p := idPageBody{Items: ids}
	if len(ids) > limit {
		p.Items = ids[:limit]
		c := base64.RawURLEncoding.EncodeToString([]byte("m" + ids[limit-1]))
		p.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, p)
}

// idList streams the ids of a {"recipientIds":[…]} body, checking each as
// it comes: the body is never held whole.
type idList struct {
	dec     *json.Decoder
	opened  bool // '{' read
	inArray bool
	seen    bool // recipientIds met
	n       int
}

// next returns the next id, io.EOF after the last once the body proved
// whole, or why the body is refused.
func (l *idList) next() (string, error) {
	if !l.opened {
		if err := l.expect(json.Delim('{'), "the body must be a JSON object {\"recipientIds\":[…]}"); err != nil {
			return "", err
		}
		l.opened = true
	}
	for {
		if l.inArray {
			if l.dec.More() {
				return l.item()
			}
			if _, err := l.dec.Token(); err != nil { // ']'
				return "", l.syntax(err)
			}
			l.inArray = false
			continue
		}
		tok, err := l.dec.Token()
		if err != nil {
			return "", l.syntax(err)
		}
		if tok == json.Delim('}') {
			return "", l.end()
		}
		if err := l.field(tok); err != nil {
			return "", err
		}
	}
}

// item reads and checks the next entry of recipientIds.
func (l *idList) item() (string, error) {
	tok, err := l.dec.Token()
	if err != nil {
		return "", l.syntax(err)
	}
	what := "recipientIds[" + strconv.Itoa(l.n) + "]"
	id, ok := tok.(string)
	if !ok {
		return "", badInputf("%s must be a string", what)
	}
	if err := event.ValidateID(what, id); err != nil {
		return "", &badInput{err.Error()}
	}
	if l.n++; l.n > MaxMembersPerRequest {
		return "", badInputf("recipientIds has more than %d entries", MaxMembersPerRequest)
	}
	return id, nil
}

// field takes the key tok of the object: recipientIds once, opening its
// list; any other is refused.
func (l *idList) field(tok json.Token) error {
	if key, _ := tok.(string); key != "recipientIds" || l.seen {
		if l.seen && key == "recipientIds" {
			return badInputf("recipientIds is given twice")
		}
		return badInputf("unknown field %q: the body is {\"recipientIds\":[…]}", key)
	}
	l.seen = true
	if err := l.expect(json.Delim('['), "recipientIds must be a list of strings"); err != nil {
		return err
	}
	l.inArray = true
	return nil
}

// end is io.EOF when the object just closed had recipientIds and nothing
// follows it in the body.
func (l *idList) end() error {
	if !l.seen {
		return badInputf("recipientIds is required: {\"recipientIds\":[…]}")
	}
	if _, err := l.dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return l.syntax(err)
		}
		return badInputf("the body must hold one JSON object")
	}
	return io.EOF
}

func (l *idList) expect(d json.Delim, msg string) error {
	tok, err := l.dec.Token()
	if err != nil {
		return l.syntax(err)
	}
	if tok != d {
		return &badInput{msg}
	}
	return nil
}

// syntax keeps read errors (a body too large) as they are and makes JSON
// errors a 400.
func (l *idList) syntax(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badInputf("the body ends before the JSON object does")
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return badInputf("the body is not valid JSON: %v", err)
	}
	if errors.Is(err, errBusy) {
		return err
	}
	return &readError{err}
}

// readError is a failure to read the body itself.
type readError struct{ err error }

func (e *readError) Error() string { return "read the body: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// utf8Reader fails on the first byte that is not valid UTF-8: encoding/json
// would turn it into U+FFFD, so an id would not be the one sent.
type utf8Reader struct {
	r    io.Reader
	tail []byte // the start of a character cut by the previous read
	off  int64
}

func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	b := append(u.tail, p[:n]...)
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(b[i:]) && err == nil {
				break // completed by the next read
			}
			return 0, badInputf("the body must be valid UTF-8 (invalid byte at offset %d)", u.off+int64(i))
		}
		i += size
	}
	u.off += int64(i)
	u.tail = append(u.tail[:0], b[i:]...)
	return n, err
}

// --- preferences ---

func (a *api) getPreferences(w http.ResponseWriter, r *http.Request, recipient string) {
	p, err := a.Preferences.Preferences(r.Context(), recipient)
	if err != nil {
		a.unavailable(w, r, "cannot read preferences", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *api) putPreferences(w http.ResponseWriter, r *http.Request, recipient string) {
	body, ok := readBodyOrAnswer(w, r)
	if !ok {
		return
	}
	var p event.Preferences
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		msg := "the body must be one JSON object {\"mutedTypes\":[…],\"mutedOrganizers\":[…],\"mutedMerchants\":[…]}"
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	if err := p.Normalize(); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if err := a.Preferences.SetPreferences(r.Context(), recipient, p); err != nil {
		a.unavailable(w, r, "cannot store preferences", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
