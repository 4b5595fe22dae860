// Package filter selects the trajectories worth training on: resolved
// ones, and semi-resolved ones (the agent edited every file the gold patch
// touches but the tests still fail), which SWE-Lego recycles. Malformed,
// duplicate, unresolved and over-long trajectories are dropped, each with
// its reason in the report. Its input is any layout and shape package
// format reads; its output is lego's own trajectory shape, which the
// masking reads.
package filter

import (
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/legobuild/lego/rules/swe/format"
)

// Options say what to keep.
type Options struct {
	Keep     []string // "resolved", "semi_resolved"
	MaxTurns int      // 0 = no limit
}

// Kinds a trajectory can be kept as.
const (
	Resolved     = "resolved"
	SemiResolved = "semi_resolved"
)

// Check validates options.
func (o Options) Check() error {
	for _, k := range o.Keep {
		if k != Resolved && k != SemiResolved {
			return fmt.Errorf("keep: unknown kind %q (want %s or %s)", k, Resolved, SemiResolved)
		}
	}
	if o.MaxTurns < 0 {
		return fmt.Errorf("max_turns: %d is negative", o.MaxTurns)
	}
	return nil
}

// Verdict is what happens to one trajectory. Reason is a short category
// for counting, Detail says more.
type Verdict struct {
	Keep   bool
	Kind   string // for kept ones: resolved or semi_resolved
	Reason string
	Detail string
}

// Semi tells whether t is semi-resolved: flagged so, or (when it carries
// the gold patch) unresolved although its patch touches every file the
// gold patch does.
func Semi(t *format.Trajectory) bool {
	if t.Resolved {
		return false
	}
	if t.SemiResolved {
		return true
	}
	if t.GoldPatch == "" || t.Patch == "" {
		return false
	}
	have := map[string]bool{}
	for _, f := range format.PatchFiles(t.Patch) {
		have[f] = true
	}
	gold := format.PatchFiles(t.GoldPatch)
	for _, f := range gold {
		if !have[f] {
			return false
		}
	}
	return len(gold) > 0
}

// Judge decides one trajectory on its own (duplicates are Dedup's).
func Judge(t *format.Trajectory, o Options) Verdict {
	if why := t.Check(); why != "" {
		return Verdict{Reason: "malformed", Detail: why}
	}
	if t.InfraError != nil {
		// Cut short by the infrastructure: no result of the agent's.
		return Verdict{Reason: "infra_error", Detail: t.InfraError.Class + ": " + t.InfraError.Message}
	}
	if n := t.AssistantTurns(); o.MaxTurns > 0 && n > o.MaxTurns {
		return Verdict{Reason: "too_many_turns", Detail: fmt.Sprintf("%d turns > max_turns %d", n, o.MaxTurns)}
	}
	kind := ""
	switch {
	case t.Resolved:
		kind = Resolved
	case Semi(t):
		kind = SemiResolved
	default:
		return Verdict{Reason: "unresolved"}
	}
	for _, k := range o.Keep {
		if k == kind {
			return Verdict{Keep: true, Kind: kind}
		}
	}
	return Verdict{Reason: kind + "_not_kept"}
}

// Dedup remembers what it has seen: the same line twice, or the same
// run (instance, teacher, seed) recorded twice.
type Dedup struct {
	lines map[uint64]bool
	runs  map[string]bool
}

// NewDedup makes an empty Dedup.
func NewDedup() *Dedup { return &Dedup{lines: map[uint64]bool{}, runs: map[string]bool{}} }

// Seen records the trajectory and says whether it was seen before.
func (d *Dedup) Seen(sum uint64, t *format.Trajectory) bool {
	run := fmt.Sprintf("%s\x00%s\x00%d", t.InstanceID, t.Teacher, t.Seed)
	dup := d.lines[sum] || (t.Teacher != "" && d.runs[run])
	d.lines[sum] = true
	if t.Teacher != "" {
		d.runs[run] = true
	}
	return dup
}

// Sum is the digest Dedup compares lines by: 64 bits of xxhash, for which
// a collision among a few million lines is a one-in-a-million event.
func Sum(line []byte) uint64 { return xxhash.Sum64(line) }

// Report is what the filter did.
type Report struct {
	Read         int                 `json:"read"`
	Kept         int                 `json:"kept"`
	KeptResolved int                 `json:"kept_resolved"`
	KeptSemi     int                 `json:"kept_semi_resolved"`
	Dropped      map[string]int      `json:"dropped"`
	Examples     map[string][]string `json:"dropped_examples"` // a few "file:line instance: detail" per reason
	Warnings     []string            `json:"warnings,omitempty"`
}

// NewReport makes an empty report.
func NewReport() *Report {
	return &Report{Dropped: map[string]int{}, Examples: map[string][]string{}}
}

// Add counts one verdict.
func (r *Report) Add(v Verdict, where, instance string) {
	r.Read++
	if v.Keep {
		r.Kept++
		if v.Kind == SemiResolved {
			r.KeptSemi++
		} else {
			r.KeptResolved++
		}
		return
	}
	r.Dropped[v.Reason]++
	if len(r.Examples[v.Reason]) < 5 {
		ex := where + " " + instance
		if v.Detail != "" {
			ex += ": " + v.Detail
		}
		r.Examples[v.Reason] = append(r.Examples[v.Reason], ex)
	}
}
