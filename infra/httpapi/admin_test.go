package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/httpapi"
)

// TestAdminAPIIsOffUnlessConfigured checks that status and dead letters
// answer only when the admin API is on, and say how to turn it on.
func TestAdminAPIIsOffUnlessConfigured(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := newFuzzStore(t)
		api := httpapi.New(httpapi.Config{
			Commands: handlers.NewService(s, s, handlers.Config{ConflictTimeout: time.Second}),
			Docs:     s, Hot: s, DeadLetters: s, AdminAPI: on,
			Status: func(context.Context) (any, error) { return map[string]int{"applied": 0}, nil },
			Logger: slog.New(slog.DiscardHandler),
		})
		for _, req := range []struct{ method, path string }{
			{"GET", "/v1/status"}, {"GET", "/v1/dlq"}, {"GET", "/v1/dlq/1"}, {"DELETE", "/v1/dlq/1"},
			{"POST", "/v1/dlq/redrive"}, {"DELETE", "/v1/dlq?projection=apps"},
		} {
			w := httptest.NewRecorder()
			api.ServeHTTP(w, httptest.NewRequest(req.method, req.path, nil))
			body, _ := io.ReadAll(w.Body)
			off := w.Code == http.StatusNotFound && strings.Contains(string(body), "--admin-api")
			if off == on {
				t.Errorf("admin API on=%v: %s %s answered %d %s", on, req.method, req.path, w.Code, body)
			}
		}
	}
}
