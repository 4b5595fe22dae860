package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// ActionRecord is what lego remembers of an action to say why it reran.
type ActionRecord struct {
	Label    string            `json:"label"`
	Mnemonic string            `json:"mnemonic"`
	Output   string            `json:"output"`
	Key      string            `json:"key"`
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Inputs   map[string]string `json:"inputs,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	Reasons  []string          `json:"reasons,omitempty"`
	// Duration is how long the action ran: the GPU scheduler's estimate
	// for its next run.
	Duration time.Duration `json:"duration_ns,omitempty"`
}

func (r *ActionRecord) id() string { return r.Label + " " + r.Output }

// History is the per-workspace record of previous builds, kept under
// lego-out/.lego: the latest record of every action, and the reasons of the
// actions that ran in the last build.
type History struct {
	dir      string
	mu       sync.Mutex
	loaded   bool
	prev     map[string]*ActionRecord
	ran      []*ActionRecord
	buildTag string
}

// OpenHistory reads nothing yet: the previous records are loaded only when
// an action must run, so a null build pays nothing for explain.
func OpenHistory(dir string) *History { return &History{dir: dir} }

func (h *History) load() {
	if h.loaded {
		return
	}
	h.loaded = true
	h.prev = map[string]*ActionRecord{}
	b, err := os.ReadFile(filepath.Join(h.dir, "actions.json"))
	if err != nil {
		return
	}
	var recs []*ActionRecord
	if json.Unmarshal(b, &recs) != nil {
		return // a damaged history only costs explanations
	}
	for _, r := range recs {
		h.prev[r.id()] = r
	}
}

// record records an action about to run and computes why it runs.
func (h *History) record(r *ActionRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.load()
	r.Reasons = diffRecords(h.prev[r.id()], r)
	h.ran = append(h.ran, r)
}

// lastDuration is how long the action took the last time it ran, 0 if
// unknown: the GPU scheduler's estimate.
func (h *History) lastDuration(r *ActionRecord) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.load()
	if old := h.prev[r.id()]; old != nil {
		return old.Duration
	}
	return 0
}

// ranFor sets the duration of a recorded action once it has run.
func (h *History) ranFor(r *ActionRecord, d time.Duration) {
	h.mu.Lock()
	r.Duration = d
	h.mu.Unlock()
}

func diffRecords(old, cur *ActionRecord) []string {
	if old == nil {
		return []string{"new action: no earlier build of it is recorded"}
	}
	var rs []string
	for _, n := range sortedKeys(cur.Attrs, old.Attrs) {
		o, okO := old.Attrs[n]
		c, okC := cur.Attrs[n]
		if okO != okC || o != c {
			rs = append(rs, fmt.Sprintf("attribute %s changed: %s -> %s", n, clip(o), clip(c)))
		}
	}
	for _, p := range sortedKeys(cur.Inputs, old.Inputs) {
		o, okO := old.Inputs[p]
		c, okC := cur.Inputs[p]
		switch {
		case !okO:
			rs = append(rs, "input added: "+p)
		case !okC:
			rs = append(rs, "input removed: "+p)
		case o != c:
			rs = append(rs, fmt.Sprintf("input changed: %s (%s -> %s)", p, short(o), short(c)))
		}
	}
	if strings.Join(old.Args, "\x00") != strings.Join(cur.Args, "\x00") {
		rs = append(rs, "command line changed")
	}
	for _, n := range sortedKeys(cur.Env, old.Env) {
		if old.Env[n] != cur.Env[n] {
			rs = append(rs, "environment variable changed: "+n)
		}
	}
	if len(rs) == 0 {
		if old.Key == cur.Key {
			rs = append(rs, "same key as before, but its result was not in the cache (cleaned, collected or never stored)")
		} else {
			rs = append(rs, "action key changed (platform or tool)")
		}
	}
	return rs
}

func sortedKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func clip(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…", s[:77])
	}
	return fmt.Sprintf("%q", s)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Save writes the records; a null build only notes that nothing ran.
func (h *History) Save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	if len(h.ran) == 0 {
		return writeJSON(filepath.Join(h.dir, "last_build.json"), []*ActionRecord{})
	}
	h.load()
	for _, r := range h.ran {
		h.prev[r.id()] = r
	}
	all := make([]*ActionRecord, 0, len(h.prev))
	for _, r := range h.prev {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id() < all[j].id() })
	sort.Slice(h.ran, func(i, j int) bool { return h.ran[i].id() < h.ran[j].id() })
	if err := writeJSON(filepath.Join(h.dir, "actions.json"), all); err != nil {
		return err
	}
	return writeJSON(filepath.Join(h.dir, "last_build.json"), h.ran)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LastBuild returns the actions that ran in the last build.
func LastBuild(dir string) ([]*ActionRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, "last_build.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var recs []*ActionRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "last_build.json"), err)
	}
	return recs, nil
}
