package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/evflow/evflow/infra/platform"
)

// fixedStatus is a replica r1 owning partitions 0 and 1 of 4, with a
// projection rebuilding and one whose store is down.
func fixedStatus() platform.Status {
	return platform.Status{
		Replica: "r1", Owned: []int{0, 1}, Owners: map[int]string{0: "r1", 1: "r1", 3: "r2"},
		Takeovers: 2, Partitions: 4, Bus: "jetstream",
		StreamMessages: 100, StreamLast: 120, Heads: []uint64{120, 90, 0, 55},
		Rebuilds: 1,
		Projections: []platform.ProjectionStatus{
			{Name: "apps", Applied: 10, Skipped: 1, Parked: 2, DeadLetters: 3,
				Checkpoints: []uint64{120, 80, 0, 50}, Lag: []uint64{0, 10, 0, 5}},
			{Name: "versions", Generation: "g7", Rebuilding: true,
				Checkpoints: []uint64{100, 90, 0, 55}, Lag: []uint64{20, 0, 0, 0}},
			{Name: "hot", Error: "checkpoints unavailable: redis: connection refused"},
		},
	}
}

func TestWriteStatusPrintsARowPerProjectionAndPartition(t *testing.T) {
	var out bytes.Buffer
	if err := writeStatus(&out, fixedStatus()); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	lines := strings.Split(text, "\n")

	for _, want := range []string{"replica: r1", "bus: jetstream", "partitions: 4, 2 owned here: 0-1",
		"stream events: 100, last position 120", "takeovers: 2", "rebuilds: 1"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Join(strings.Fields(l), " ") == want }) {
			t.Errorf("no header line %q in\n%s", want, text)
		}
	}

	head := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "PROJECTION") })
	if head < 0 {
		t.Fatalf("no table header in\n%s", text)
	}
	wantRows := [][]string{
		{"PROJECTION", "PARTITION", "OWNER", "CHECKPOINT", "HEAD", "LAG"},
		{"apps", "0", "r1", "120", "120", "0"},
		{"apps", "1", "r1", "80", "90", "10"},
		{"apps", "2", "-", "0", "0", "0"},
		{"apps", "3", "r2", "50", "55", "5"},
		{"versions", "0", "r1", "100", "120", "20"},
		{"versions", "1", "r1", "90", "90", "0"},
		{"versions", "2", "-", "0", "0", "0"},
		{"versions", "3", "r2", "55", "55", "0"},
		{"hot", "0", "r1", "?", "120", "?"},
		{"hot", "1", "r1", "?", "90", "?"},
		{"hot", "2", "-", "?", "0", "?"},
		{"hot", "3", "r2", "?", "55", "?"},
	}
	rows := lines[head:]
	if len(rows) < len(wantRows) || rows[len(wantRows)] != "" {
		t.Fatalf("want %d table lines then a blank one, got\n%s", len(wantRows), strings.Join(rows, "\n"))
	}
	rows = rows[:len(wantRows)]
	for i, row := range rows {
		if got := strings.Fields(row); !slices.Equal(got, wantRows[i]) {
			t.Errorf("row %d = %q, want %q", i, got, wantRows[i])
		}
		if got, want := columnStarts(row), columnStarts(rows[0]); !slices.Equal(got, want) {
			t.Errorf("row %d columns start at %v, the header's at %v:\n%s", i, got, want, strings.Join(rows, "\n"))
		}
	}

	for _, want := range []string{
		"apps: generation original; 10 applied since start, 1 skipped, 2 parked; 3 dead letters waiting",
		"versions: generation g7 (rebuilding); 0 applied since start, 0 skipped, 0 parked; 0 dead letters waiting",
		"hot: generation original; 0 applied since start, 0 skipped, 0 parked; 0 dead letters waiting; checkpoints unavailable: redis: connection refused",
		"owner -: not this replica's partition (another's, or between owners); run evflow status --addr against each replica",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

// A replica that predates Status.Owners reports only Owned.
func TestWriteStatusOwnersFromOwnedAlone(t *testing.T) {
	st := fixedStatus()
	st.Owners, st.Owned = nil, []int{1, 2}
	var out bytes.Buffer
	if err := writeStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[0] == "apps" {
			owners = append(owners, f[2])
		}
	}
	if want := []string{"-", "r1", "r1", "-"}; !slices.Equal(owners, want) {
		t.Fatalf("owners %q, want %q in\n%s", owners, want, out.String())
	}
}

func TestPartitionList(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, "none"},
		{[]int{3}, "3"},
		{[]int{0, 1, 2, 3}, "0-3"},
		{[]int{9, 0, 1, 2, 3, 7, 10}, "0-3,7,9-10"},
	} {
		if got := partitionList(tc.in); got != tc.want {
			t.Errorf("partitionList(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStatusJSONDecodesIntoStatus(t *testing.T) {
	want := fixedStatus()
	addr := serveStatus(t, want)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--json", "--addr", addr}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	dec.DisallowUnknownFields()
	var got platform.Status
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", out.String(), err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v\nwant    %+v", got, want)
	}
	// The keys scripts already read keep their names.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"replica", "owned", "takeovers", "partitions", "bus", "stream_messages",
		"stream_last_position", "heads", "projections", "rebuilds"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no %q in %s", k, out.String())
		}
	}
	var projs []map[string]json.RawMessage
	if err := json.Unmarshal(keys["projections"], &projs); err != nil || len(projs) == 0 {
		t.Fatalf("projections %s: %v", keys["projections"], err)
	}
	for _, k := range []string{"name", "generation", "applied", "skipped", "parked", "dead_letters", "checkpoints", "lag"} {
		if _, ok := projs[0][k]; !ok {
			t.Errorf("no %q in projection %s", k, keys["projections"])
		}
	}
}

func TestStatusPrintsTheTableByDefault(t *testing.T) {
	addr := serveStatus(t, fixedStatus())
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--addr", addr}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"PROJECTION", "dead letters waiting"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

func TestStatusBadArgumentsNameTheFlagAndExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--json=maybe"}, "-json"},
		{[]string{"status", "--no-such-flag"}, "no-such-flag"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("stderr %q does not mention %q", errOut.String(), tc.want)
			}
		})
	}
}

// serveStatus answers GET /v1/status with st and returns the base URL.
func serveStatus(t testing.TB, st platform.Status) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// columnStarts is where each space-separated cell of line begins.
func columnStarts(line string) []int {
	var starts []int
	for i, r := range line {
		if r != ' ' && (i == 0 || line[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	return starts
}
