package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// repeatWindow: a franz-go warning or error equal to one logged less than
// this long ago goes to the debug level instead. The client retries a
// refused connection every second or so; the log says it once.
const repeatWindow = time.Minute

// kgoLogger sends franz-go's own log to slog: its warnings and errors
// (once per repeatWindow for the same message and error), and its info and
// debug lines when slog is at debug level.
type kgoLogger struct {
	l *slog.Logger

	mu   sync.Mutex
	seen map[string]time.Time
}

func newKgoLogger(l *slog.Logger) *kgoLogger {
	return &kgoLogger{l: l, seen: map[string]time.Time{}}
}

func (k *kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (k *kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelDebug
	default:
		l = slog.LevelDebug - 4
	}
	if l >= slog.LevelWarn && k.repeated(msg, keyvals) {
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, "kafka client: "+msg, keyvals...)
}

// repeated reports whether msg with the same error was logged within the
// window, and notes it as logged now if not.
func (k *kgoLogger) repeated(msg string, keyvals []any) bool {
	key := msg
	for i := 0; i+1 < len(keyvals); i += 2 {
		if name, _ := keyvals[i].(string); name == "err" {
			key += "\x00" + fmt.Sprint(keyvals[i+1])
		}
	}
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if last, ok := k.seen[key]; ok && now.Sub(last) < repeatWindow {
		return true
	}
	if len(k.seen) > 1000 { // bounded: forget everything now and then
		clear(k.seen)
	}
	k.seen[key] = now
	return false
}
