package event

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// Source identifies the Kafka record a notification was made from.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's own timestamp. It is part of the identity so
	// that a topic deleted and created again (offsets restart at zero) does
	// not make new records look like redeliveries of old ones.
	Timestamp time.Time
}

// NotificationID is the id of the row made for recipient from the record at
// src. The same record and recipient always give the same id, which is what
// makes a redelivered record create no second row and be pushed again with
// the id clients already know.
//
// Layout: a UUID (version 8, RFC 9562) whose first 48 bits are the record's
// timestamp in milliseconds, so ids of one period sit together in the
// primary-key index, followed by 74 bits of SHA-256 over the source and
// recipient.
func NotificationID(src Source, recipient string) uuid.UUID {
	h := sha256.New()
	var b [20]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(src.Partition))
	binary.BigEndian.PutUint64(b[4:12], uint64(src.Offset))
	binary.BigEndian.PutUint64(b[12:20], uint64(src.Timestamp.UnixNano()))
	h.Write([]byte(src.Topic))
	h.Write([]byte{0})
	h.Write(b[:])
	h.Write([]byte(recipient))
	var sum [32]byte
	h.Sum(sum[:0])

	var id uuid.UUID
	ms := uint64(src.Timestamp.UnixMilli())
	id[0], id[1], id[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	id[3], id[4], id[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	copy(id[6:], sum[:10])
	id[6] = 0x80 | id[6]&0x0f // version 8
	id[8] = 0x80 | id[8]&0x3f // RFC 9562 variant
	return id
}

// EventKey identifies the event a message describes, whatever record carried
// it: rows of one recipient with equal keys are duplicates (signalctl dedupe).
func (d *Decoded) EventKey() []byte {
	h := sha256.New()
	for _, part := range []string{d.EventType, d.ActorID, d.OrganizerID, d.MerchantID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(d.CanonicalData)
	h.Write([]byte{0})
	h.Write([]byte(d.Occurred.UTC().Format(time.RFC3339Nano)))
	return h.Sum(nil)[:16]
}
