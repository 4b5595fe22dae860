package agent

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/legobuild/lego/rules/swe/format"
)

// Report is a rollout target's report.json.
type Report struct {
	Rollouts     int                       `json:"rollouts"`
	Skipped      int                       `json:"skipped"` // slots that are no task
	Resolved     int                       `json:"resolved"`
	SemiResolved int                       `json:"semi_resolved"`
	ResolvedRate float64                   `json:"resolved_rate"`
	Exits        map[string]int            `json:"exits"`
	Turns        map[string]int            `json:"turns_histogram"` // "0-9", "10-19", ...
	PerInstance  map[string]*InstanceStats `json:"per_instance"`
}

// InstanceStats are one task's rollouts.
type InstanceStats struct {
	Samples      int   `json:"samples"`
	Resolved     int   `json:"resolved"`
	SemiResolved int   `json:"semi_resolved"`
	Turns        []int `json:"turns"`
}

// ReadOutcome reads a rollout's outcome file. One the infrastructure cut
// short (a trajectory marked infra_error) is an error: it is no result,
// to count as unresolved or learn from.
func ReadOutcome(path string) (Outcome, error) {
	var o Outcome
	if err := format.ReadJSON(path, &o); err != nil {
		return o, err
	}
	if t := o.Trajectory; t != nil && t.InfraError != nil {
		return o, fmt.Errorf("%s: the rollout of %s failed (%s: %s): it is no result; build again to rerun it", path, t.InstanceID, t.InfraError.Class, t.InfraError.Message)
	}
	return o, nil
}

// Collect joins rollout outcomes (files of Outcome) into
// trajectories.jsonl and report.json in dir.
func Collect(files []string, dir string) (*Report, error) {
	rep := &Report{Exits: map[string]int{}, Turns: map[string]int{}, PerInstance: map[string]*InstanceStats{}}
	w, err := format.Create(filepath.Join(dir, "trajectories.jsonl"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		o, err := ReadOutcome(f)
		if err != nil {
			w.Abort()
			return nil, err
		}
		if o.Skipped != "" || o.Trajectory == nil {
			rep.Skipped++
			continue
		}
		t := o.Trajectory
		if err := w.WriteJSONLine(t); err != nil {
			w.Abort()
			return nil, err
		}
		rep.Rollouts++
		st := rep.PerInstance[t.InstanceID]
		if st == nil {
			st = &InstanceStats{}
			rep.PerInstance[t.InstanceID] = st
		}
		st.Samples++
		st.Turns = append(st.Turns, t.Turns)
		if t.Resolved {
			rep.Resolved++
			st.Resolved++
		} else if t.SemiResolved {
			rep.SemiResolved++
			st.SemiResolved++
		}
		rep.Exits[t.Exit]++
		lo := t.Turns / 10 * 10
		rep.Turns[fmt.Sprintf("%d-%d", lo, lo+9)]++
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if rep.Rollouts > 0 {
		rep.ResolvedRate = float64(rep.Resolved) / float64(rep.Rollouts)
	}
	for _, st := range rep.PerInstance {
		sort.Ints(st.Turns)
	}
	return rep, format.WriteJSON(filepath.Join(dir, "report.json"), rep)
}
