package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/evflow/evflow/infra/bus"
)

// DeadLetters administers the parked events (see infra/projector).
type DeadLetters interface {
	// List returns the letters of projection ("" for all), in parking order.
	List(ctx context.Context, projection string) ([]bus.Letter, error)
	// Get returns the letter at seq.
	Get(ctx context.Context, seq uint64) (bus.Letter, error)
	// Redrive applies the letters of projection ("" for all) again and
	// reports what it did.
	Redrive(ctx context.Context, projection string) (any, error)
	// Delete removes the letter at seq.
	Delete(ctx context.Context, seq uint64) error
	// Purge removes the letters of projection ("" for all).
	Purge(ctx context.Context, projection string) (uint64, error)
}

// Letter is a dead letter as the API shows it.
type Letter struct {
	Seq           uint64    `json:"seq"`
	Projection    string    `json:"projection"`
	Partition     int       `json:"partition"`
	Position      uint64    `json:"position"`
	AggregateType string    `json:"aggregate_type,omitempty"`
	AggregateID   string    `json:"aggregate_id,omitempty"`
	EventID       string    `json:"event_id"`
	Reason        string    `json:"reason"`
	Attempts      int       `json:"attempts"`
	ParkedAt      time.Time `json:"parked_at"`
	// Event is the event as JSON, or as a string when it is not JSON.
	Event json.RawMessage `json:"event"`
}

func letterOf(l bus.Letter) Letter {
	ev := json.RawMessage(l.Payload)
	if !json.Valid(ev) {
		ev, _ = json.Marshal(string(l.Payload))
	}
	return Letter{Seq: l.Seq, Projection: l.Projection, Partition: l.Partition, Position: l.Position,
		AggregateType: l.AggregateType, AggregateID: l.AggregateID, EventID: l.MessageID,
		Reason: l.Reason, Attempts: l.Attempts, ParkedAt: l.ParkedAt, Event: ev}
}

func (a *api) dlqList(w http.ResponseWriter, r *http.Request) {
	ls, err := a.cfg.DeadLetters.List(r.Context(), r.URL.Query().Get("projection"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]Letter, len(ls))
	for i, l := range ls {
		out[i] = letterOf(l)
	}
	writeJSON(w, http.StatusOK, map[string]any{"letters": out})
}

func (a *api) dlqShow(w http.ResponseWriter, r *http.Request) {
	seq, ok := letterSeq(w, r)
	if !ok {
		return
	}
	l, err := a.cfg.DeadLetters.Get(r.Context(), seq)
	if err != nil {
		writeError(w, http.StatusNotFound, apiError{Error: err.Error(), Field: "seq"})
		return
	}
	writeJSON(w, http.StatusOK, letterOf(l))
}

func (a *api) dlqDelete(w http.ResponseWriter, r *http.Request) {
	seq, ok := letterSeq(w, r)
	if !ok {
		return
	}
	if err := a.cfg.DeadLetters.Delete(r.Context(), seq); err != nil {
		writeError(w, http.StatusNotFound, apiError{Error: err.Error(), Field: "seq"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) dlqRedrive(w http.ResponseWriter, r *http.Request) {
	res, err := a.cfg.DeadLetters.Redrive(r.Context(), r.URL.Query().Get("projection"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
}

func (a *api) dlqPurge(w http.ResponseWriter, r *http.Request) {
	n, err := a.cfg.DeadLetters.Purge(r.Context(), r.URL.Query().Get("projection"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": n})
}

func letterSeq(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, apiError{Error: "seq must be a positive integer", Field: "seq"})
		return 0, false
	}
	return seq, true
}
