package engine

import (
	"bytes"
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
// lego-out/.lego: the latest record of every action (actions.jsonl, a log
// each build appends the records of the actions it ran to, later lines
// winning), and the reasons of the actions that ran in the last build.
//
// Why a log read line by line: after an edit, a build of 100,000 actions
// runs a few, and reading, decoding and rewriting every record for them
// cost more than the rest of the build. A line is decoded only when its
// action runs again; the rest is scanned for its label and output.
type History struct {
	dir    string
	mu     sync.Mutex
	loaded bool
	lines  map[string][]byte // action id -> its latest record, undecoded
	count  int               // lines in the log, for compaction
	prev   map[string]*ActionRecord
	ran    []*ActionRecord
}

// OpenHistory reads nothing yet: the previous records are loaded only when
// an action must run, so a null build pays nothing for explain.
func OpenHistory(dir string) *History { return &History{dir: dir} }

const (
	historyLog    = "actions.jsonl"
	historyLegacy = "actions.json" // one JSON array, before the log
)

func (h *History) load() {
	if h.loaded {
		return
	}
	h.loaded = true
	h.lines, h.prev = map[string][]byte{}, map[string]*ActionRecord{}
	b, err := os.ReadFile(filepath.Join(h.dir, historyLog))
	if err != nil {
		h.loadLegacy()
		return
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil // a last line cut short by a crash fails to decode
		}
		if id, ok := recordID(line); ok {
			h.lines[id] = line
			h.count++
		}
	}
}

func (h *History) loadLegacy() {
	b, err := os.ReadFile(filepath.Join(h.dir, historyLegacy))
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

// recordID reads the label and output that open a record's line, as
// ActionRecord's field order writes them, without decoding the rest.
func recordID(line []byte) (string, bool) {
	// The usual line, with no escapes in those strings, read as is.
	if rest, ok := bytes.CutPrefix(line, []byte(`{"label":"`)); ok {
		label, rest, ok1 := bytes.Cut(rest, []byte(`","mnemonic":"`))
		_, rest, ok2 := bytes.Cut(rest, []byte(`","output":"`))
		output, _, ok3 := bytes.Cut(rest, []byte(`","key":`))
		if ok1 && ok2 && ok3 && bytes.IndexByte(label, '\\') < 0 && bytes.IndexByte(output, '\\') < 0 &&
			bytes.IndexByte(label, '"') < 0 && bytes.IndexByte(output, '"') < 0 && len(label) > 0 {
			return string(label) + " " + string(output), true
		}
	}
	var head struct {
		Label    string `json:"label"`
		Mnemonic string `json:"mnemonic"`
		Output   string `json:"output"`
	}
	// The three strings end at the fourth field's key, "key".
	end := bytes.Index(line, []byte(`,"key":`))
	if end < 0 {
		return "", false
	}
	if err := json.Unmarshal(append(line[:end:end], '}'), &head); err != nil || head.Label == "" {
		return "", false
	}
	return head.Label + " " + head.Output, true
}

// previous is the latest record of the action id, or nil; h.mu is held.
func (h *History) previous(id string) *ActionRecord {
	h.load()
	if r, ok := h.prev[id]; ok {
		return r
	}
	line, ok := h.lines[id]
	if !ok {
		return nil
	}
	var r ActionRecord
	if json.Unmarshal(line, &r) != nil {
		return nil
	}
	h.prev[id] = &r
	return &r
}

// record records an action about to run and computes why it runs.
func (h *History) record(r *ActionRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.Reasons = diffRecords(h.previous(r.id()), r)
	h.ran = append(h.ran, r)
}

// lastDuration is how long the action took the last time it ran, 0 if
// unknown: the GPU scheduler's estimate.
func (h *History) lastDuration(r *ActionRecord) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.previous(r.id()); old != nil {
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
	sort.Slice(h.ran, func(i, j int) bool { return h.ran[i].id() < h.ran[j].id() })
	var add []byte
	for _, r := range h.ran {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		h.lines[r.id()] = line
		add = append(append(add, line...), '\n')
	}
	// Rewritten whole when most of it is stale, or to leave the old
	// format; appended to otherwise.
	legacy := len(h.prev) > 0 && h.count == 0
	if legacy || h.count+len(h.ran) > 2*len(h.lines)+1000 {
		if err := h.rewrite(); err != nil {
			return err
		}
	} else if err := appendFile(filepath.Join(h.dir, historyLog), add); err != nil {
		return err
	}
	return writeJSON(filepath.Join(h.dir, "last_build.json"), h.ran)
}

// rewrite writes the log afresh with one line per action.
func (h *History) rewrite() error {
	for id, r := range h.prev {
		if _, ok := h.lines[id]; !ok {
			line, err := json.Marshal(r) // a legacy record
			if err != nil {
				return err
			}
			h.lines[id] = line
		}
	}
	ids := make([]string, 0, len(h.lines))
	for id := range h.lines {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b []byte
	for _, id := range ids {
		b = append(append(b, h.lines[id]...), '\n')
	}
	p := filepath.Join(h.dir, historyLog)
	tmp := fmt.Sprintf("%s.tmp.%d", p, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	os.Remove(filepath.Join(h.dir, historyLegacy))
	return nil
}

// appendFile appends b to the file at path with one write: builds that
// end together do not interleave their lines.
func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
