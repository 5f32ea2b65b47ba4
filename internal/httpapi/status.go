package httpapi

import (
	"context"
	"net/http"
	"time"
)

// Status is the one-screen summary of GET /status (and signalctl status).
type Status struct {
	Instance    string            `json:"instance"`
	Version     string            `json:"version"`
	StartedAt   time.Time         `json:"startedAt"`
	Ready       bool              `json:"ready"`
	Checks      map[string]string `json:"checks"`
	Connections Connections       `json:"connections"`
	Consumer    ConsumerStatus    `json:"consumer"`
	DeadLetters any               `json:"deadLetters"`
	Instances   int               `json:"instances"`
	// Cluster lists the registered instances (with Instances of them).
	Cluster []InstanceStatus `json:"cluster"`
}

// InstanceStatus is one registered instance.
type InstanceStatus struct {
	ID         string    `json:"id"`
	HTTPAddr   string    `json:"httpAddr"`
	StartedAt  time.Time `json:"startedAt"`
	Self       bool      `json:"self"`       // the instance that answered
	Clients    int       `json:"clients"`    // WebSocket clients registered on it
	Partitions []int32   `json:"partitions"` // partitions its consumer owns
	// SilentSeconds is the age of its last heartbeat; Stale is true past
	// two heartbeats, and Note then says what happens to it meanwhile.
	SilentSeconds float64 `json:"silentSeconds"`
	Stale         bool    `json:"stale"`
	Note          string  `json:"note,omitempty"`
}

// Connections counts WebSocket clients.
type Connections struct {
	Local int `json:"local"` // on this instance
	Total int `json:"total"` // on every instance
}

// ConsumerStatus is the consumer group's position.
type ConsumerStatus struct {
	Topic           string         `json:"topic"`
	Group           string         `json:"group"`
	PartitionsOwned int            `json:"partitionsOwned"` // by this instance
	Lag             []PartitionLag `json:"lag"`             // of the whole group
	TotalLag        int64          `json:"totalLag"`
	Error           string         `json:"error,omitempty"`
}

// PartitionLag is one partition's position.
type PartitionLag struct {
	Partition int32 `json:"partition"`
	Committed int64 `json:"committed"` // -1: nothing committed yet
	End       int64 `json:"end"`
	Lag       int64 `json:"lag"`
	// Member is the group member that owns the partition (client id and
	// address), Instance the serve instance that member is.
	Member   string `json:"member,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// StatusSource fills what the HTTP layer cannot know.
type StatusSource func(ctx context.Context) Status

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	st := a.StatusSource(ctx)
	st.Checks = map[string]string{}
	st.Ready = !a.Draining()
	for _, c := range a.Checks {
		if err := c.Check(ctx); err != nil {
			st.Checks[c.Name] = err.Error()
			st.Ready = false
		} else {
			st.Checks[c.Name] = "ok"
		}
	}
	st.Connections.Local = a.Hub.Len()
	if list, err := a.Relay.Clients(ctx); err == nil {
		st.Connections.Total = len(list)
	}
	writeJSON(w, http.StatusOK, st)
}
