package ingest

import (
	"fmt"
	"time"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
)

// What one record may cost (docs/security.md). Every bound is checked
// before a row or a frame is built: a record past one becomes a dead letter
// with its reason, and the records around it are stored as usual.
//
// Rows of one record repeat its data, content and action URL once per
// recipient, so a record's cost in the database (and, a chunk at a time,
// in memory) is its rows times the bytes of one row: both are bounded, and
// their product too.

// Limits bound one record. Zero values take the defaults below.
type Limits struct {
	// MaxDataBytes bounds data, as stored (canonical JSON): too_large.
	MaxDataBytes int
	// MaxRowBytes bounds one rendered row: data, content, action URL,
	// actor and ids, and rowOverhead for the fixed columns: too_large.
	MaxRowBytes int
	// MaxRowsPerRecord bounds the rows one record becomes: its recipients,
	// or the members of its organizer or merchant: too_many_recipients.
	MaxRowsPerRecord int
	// MaxBytesPerRecord bounds rows × row bytes: too_large.
	MaxBytesPerRecord int64
	// MaxClockSkew is how far ahead of now a record's timestamp may be:
	// further, or no timestamp at all (zero or negative, as v0 and v1
	// records carry): timestamp_out_of_range.
	MaxClockSkew time.Duration
}

// Defaults of Limits (and of the ingest.* keys that set them).
const (
	DefaultMaxDataBytes      = 64 << 10
	DefaultMaxRowBytes       = 128 << 10
	DefaultMaxRowsPerRecord  = 100_000
	DefaultMaxBytesPerRecord = 64 << 20
	DefaultMaxClockSkew      = time.Hour
)

// MaxClockSkewLimit is the largest MaxClockSkew: the store keeps partitions
// this far ahead (store.PartitionAhead days) and makes none further.
const MaxClockSkewLimit = 7 * 24 * time.Hour

// rowOverhead is what a stored row costs besides its variable columns (id,
// seq, times, event key, source, tuple and index entries), and what its
// frame adds: an estimate, so that rows of a record with empty data still
// count.
const rowOverhead = 256

// Memory bounds of the rows held at once. A transaction stores at most
// maxBytesPerTx of rows (and stages their frames), Prepare builds at most
// maxPrebuiltBytes ahead: with the three stages of the consumer, ingest
// holds at most a few times these, whatever the records.
const (
	maxBytesPerTx    = 32 << 20
	maxPrebuiltBytes = 32 << 20
)

// LimitsOf are the limits the ingest.* keys set.
func LimitsOf(c config.Ingest) Limits {
	return Limits{MaxDataBytes: c.MaxDataBytes, MaxRowBytes: c.MaxRowBytes, MaxRowsPerRecord: c.MaxRowsPerRecord,
		MaxBytesPerRecord: c.MaxBytesPerRecord, MaxClockSkew: c.MaxClockSkew}
}

func (l Limits) withDefaults() Limits {
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = DefaultMaxDataBytes
	}
	if l.MaxRowBytes <= 0 {
		l.MaxRowBytes = DefaultMaxRowBytes
	}
	if l.MaxRowsPerRecord <= 0 {
		l.MaxRowsPerRecord = DefaultMaxRowsPerRecord
	}
	if l.MaxBytesPerRecord <= 0 {
		l.MaxBytesPerRecord = DefaultMaxBytesPerRecord
	}
	if l.MaxClockSkew <= 0 {
		l.MaxClockSkew = DefaultMaxClockSkew
	}
	l.MaxClockSkew = min(l.MaxClockSkew, MaxClockSkewLimit)
	return l
}

// maxValueBytes is the largest record value worth decoding: data at its
// limit plus the most every other field may take (10,000 recipient ids of
// 256 bytes, quoted, and the other ids). A larger value is too_large
// without being parsed.
func (l Limits) maxValueBytes() int {
	return l.MaxDataBytes + event.MaxRecipientIDs*(event.MaxIDBytes+8) + 64<<10
}

// checkTimestamp says why a record's timestamp is outside the window
// ingest stores, or nil. The timestamp makes the rows' ids and the day
// partition they go to (event.NotificationID): a time before 1970 would
// wrap to a day thousands of years ahead, and a time far ahead would make
// a partition per day an attacker picks.
func (l Limits) checkTimestamp(ts, now time.Time) error {
	ms := ts.UnixMilli()
	switch {
	case ms <= 0:
		return &event.InvalidError{Reason: event.ReasonTimestampOutOfRange, Detail: fmt.Sprintf(
			"the record has no timestamp (%d ms: a v0/v1 record, or a producer that sets none); give it one, or set message.timestamp.type=LogAppendTime on the topic", ms)}
	case ts.After(now.Add(l.MaxClockSkew)):
		return &event.InvalidError{Reason: event.ReasonTimestampOutOfRange, Detail: fmt.Sprintf(
			"the record's timestamp %s is %s ahead of this instance's clock, more than ingest.max_clock_skew (%s)",
			ts.UTC().Format(time.RFC3339Nano), ts.Sub(now).Round(time.Second), l.MaxClockSkew)}
	}
	return nil
}

// rowBytes is the estimated size of one row of m (and of its frame).
func rowBytes(m *message) int {
	d := m.d
	n := rowOverhead + len(d.CanonicalData) + len(m.content) + len(m.actionURL) + len(d.EventType) +
		len(d.OrganizerID) + len(d.MerchantID) + len(d.ActorID) + len(d.Actor.ID) + len(d.Actor.Name) + len(d.Actor.Type)
	if len(d.Recipients) > 0 {
		n += event.MaxIDBytes // a recipient id, at most
	}
	return n
}

// checkRows says why rows rows of row bytes each are more than one record
// may become, or nil.
func (l Limits) checkRows(rows, row int) error {
	switch {
	case rows > l.MaxRowsPerRecord:
		return &event.InvalidError{Reason: event.ReasonTooManyRecipients, Detail: fmt.Sprintf(
			"the record would make %d notifications, more than ingest.max_rows_per_record (%d)", rows, l.MaxRowsPerRecord)}
	case int64(rows)*int64(row) > l.MaxBytesPerRecord:
		return &event.InvalidError{Reason: event.ReasonTooLarge, Detail: fmt.Sprintf(
			"the record would make %d notifications of about %d bytes, more than ingest.max_bytes_per_record (%d bytes) in all",
			rows, row, l.MaxBytesPerRecord)}
	}
	return nil
}
