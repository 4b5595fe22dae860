package tasks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
)

// File names in a task set's output directory.
const (
	TasksFile  = "tasks.jsonl"
	ReportFile = "report.json"
)

// Plan lists the files a task set is collected from; the task_set rule
// writes it at analysis, so the collecting action needs no other input.
type Plan struct {
	Source string `json:"source"` // synthetic, real or merge
	// Strategies maps each strategy asked for to "" when it ran, else to
	// why it is unavailable.
	Strategies map[string]string `json:"strategies,omitempty"`
	Sets       []string          `json:"sets,omitempty"` // merge: task set directories
	// Slots are the verdicts of task-judge, one file per candidate or
	// instance (a Slot each), in order.
	Slots []string `json:"slots,omitempty"`
}

// SlotSpec is what task-judge decides one slot from: a synthetic
// candidate (Env and Cand) or a real instance (Real).
type SlotSpec struct {
	Env  *PlanEnv  `json:"env,omitempty"`
	Cand *PlanCand `json:"cand,omitempty"`
	Real *PlanReal `json:"real,omitempty"`
	// Drop is an instance dropped at analysis (no env for it, an
	// install_config lego cannot read): its verdict, with no run.
	Drop *Rejection `json:"drop,omitempty"`
}

// Slot is one candidate's or instance's verdict: a task, or why not.
type Slot struct {
	Env      string       `json:"env"` // the repository, for the report
	Empty    bool         `json:"empty,omitempty"`
	Task     *format.Task `json:"task,omitempty"`
	Rejected *Rejection   `json:"rejected,omitempty"`
	// LateAncestors: a real instance's kept history holds this many
	// commits dated after created_at (the sanitiser's count).
	LateAncestors int `json:"late_ancestors,omitempty"`
}

// JudgeSlot decides one slot.
func JudgeSlot(s SlotSpec) (*Slot, error) {
	switch {
	case s.Drop != nil:
		return &Slot{Env: s.Drop.Env, Rejected: s.Drop}, nil
	case s.Real != nil:
		return judgeReal(*s.Real)
	case s.Env != nil && s.Cand != nil:
		return judgeCand(*s.Env, *s.Cand)
	}
	return nil, fmt.Errorf("slot spec names neither a candidate nor an instance")
}

// PlanReal is one real instance's files.
type PlanReal struct {
	Instance string `json:"instance"` // the instance as given (JSON)
	Env      string `json:"env"`      // the swe_env target at its base commit
	Manifest string `json:"manifest"` // the instance's image: the env with its sanitised .git ("" for a directory env)
	Sanitize string `json:"sanitize"` // gitrepo.Report of its .git
	Results  string `json:"results"`  // harness runs "before" (test_patch) and "after" (and patch)
}

// PlanEnv is one environment's runs.
type PlanEnv struct {
	Name     string `json:"name"`     // the repo name
	Label    string `json:"label"`    // the swe_env target
	Manifest string `json:"manifest"` // its image manifest file ("" for a directory env)
	Baseline string `json:"baseline"` // harness results of the clean run
}

// PlanCand is a candidate and the harness results of its run.
type PlanCand struct {
	Candidate string `json:"candidate"`
	Results   string `json:"results"`
	Issue     string `json:"issue,omitempty"` // the model's problem statement (an Issue), when one wrote it
}

// Report says what a task set holds and what it dropped.
type Report struct {
	Source     string              `json:"source"`
	Candidates int                 `json:"candidates"`
	Kept       int                 `json:"kept"`
	Strategies map[string]string   `json:"strategies,omitempty"`
	PerEnv     map[string]EnvCount `json:"per_env"`
	Rejected   []Rejection         `json:"rejected"`
	// LateAncestors maps each real instance whose base history holds
	// commits dated after its created_at (a rebased pull request) to how
	// many: information, not a reason to drop it.
	LateAncestors map[string]int `json:"late_ancestors,omitempty"`
}

// EnvCount counts one environment's candidates.
type EnvCount struct {
	Candidates int `json:"candidates"`
	Kept       int `json:"kept"`
}

// Rejection is a dropped candidate or instance.
type Rejection struct {
	InstanceID string `json:"instance_id"`
	Env        string `json:"env"`
	Reason     string `json:"reason"`
}

// Collect judges the plan's runs and writes TasksFile and ReportFile into
// outDir.
func Collect(p *Plan, outDir string) (*Report, error) {
	rep := &Report{Source: p.Source, Strategies: p.Strategies, PerEnv: map[string]EnvCount{}, Rejected: []Rejection{}}
	var out []format.Task
	switch p.Source {
	case "synthetic", "real":
		for _, path := range p.Slots {
			var sl Slot
			if err := format.ReadJSON(path, &sl); err != nil {
				return nil, err
			}
			if sl.Empty {
				continue
			}
			if sl.LateAncestors > 0 {
				id := ""
				if sl.Task != nil {
					id = sl.Task.InstanceID
				} else if sl.Rejected != nil {
					id = sl.Rejected.InstanceID
				}
				rep.addLate(id, sl.LateAncestors)
			}
			count := rep.PerEnv[sl.Env]
			count.Candidates++
			rep.Candidates++
			if sl.Task != nil {
				count.Kept++
				rep.Kept++
				out = append(out, *sl.Task)
			} else if sl.Rejected != nil {
				rep.Rejected = append(rep.Rejected, *sl.Rejected)
			}
			rep.PerEnv[sl.Env] = count
		}
	case "merge":
		for _, dir := range p.Sets {
			if err := merge(dir, rep, &out); err != nil {
				return nil, err
			}
		}
		sort.SliceStable(rep.Rejected, func(i, j int) bool { return rep.Rejected[i].InstanceID < rep.Rejected[j].InstanceID })
	default:
		return nil, fmt.Errorf("plan source %q: want synthetic, real or merge", p.Source)
	}
	seen := map[string]bool{}
	for _, t := range out {
		if seen[t.InstanceID] {
			return nil, fmt.Errorf("instance %s appears twice", t.InstanceID)
		}
		seen[t.InstanceID] = true
	}
	w, err := format.Create(filepath.Join(outDir, TasksFile))
	if err != nil {
		return nil, err
	}
	for _, t := range out {
		if err := w.WriteJSONLine(t); err != nil {
			w.Abort()
			return nil, err
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return rep, format.WriteJSON(filepath.Join(outDir, ReportFile), rep)
}

func (r *Report) addLate(id string, n int) {
	if r.LateAncestors == nil {
		r.LateAncestors = map[string]int{}
	}
	r.LateAncestors[id] = n
}

// judgeCand decides a synthetic candidate from the env's clean run and
// the candidate's run.
func judgeCand(e PlanEnv, pc PlanCand) (*Slot, error) {
	slot := &Slot{Env: e.Name}
	var c Candidate
	if err := format.ReadJSON(pc.Candidate, &c); err != nil {
		return nil, err
	}
	if c.Empty {
		slot.Empty = true
		return slot, nil
	}
	var base, res Results
	if err := format.ReadJSON(e.Baseline, &base); err != nil {
		return nil, err
	}
	clean, ok := base.Runs["clean"]
	if !ok {
		return nil, fmt.Errorf("%s: no clean run", e.Baseline)
	}
	if err := format.ReadJSON(pc.Results, &res); err != nil {
		return nil, err
	}
	bug, ok := res.Runs["bug"]
	if !ok {
		return nil, fmt.Errorf("%s: no bug run", pc.Results)
	}
	f2p, p2p, why := Judge(clean, bug)
	if base.Git != nil && base.Git.Present {
		// Synthetic tasks start from an env with no history at all.
		why = "the env holds a git history; a synthetic task's env must have none"
	}
	if why != "" {
		slot.Rejected = &Rejection{InstanceID: c.InstanceID, Env: e.Label, Reason: why}
		return slot, nil
	}
	statement := ProblemStatement(f2p, bug)
	if pc.Issue != "" {
		var is Issue
		if err := format.ReadJSON(pc.Issue, &is); err != nil {
			return nil, err
		}
		if is.ProblemStatement == "" {
			return nil, fmt.Errorf("%s: no problem statement for kept candidate %s (%s)", pc.Issue, c.InstanceID, is.Skipped)
		}
		statement = is.ProblemStatement
	}
	digest, err := manifestDigest(e.Manifest)
	if err != nil {
		return nil, err
	}
	slot.Task = &format.Task{
		InstanceID:       c.InstanceID,
		Repo:             c.Repo,
		Patch:            c.Patch,
		BugPatch:         c.BugPatch,
		ProblemStatement: statement,
		FailToPass:       f2p,
		PassToPass:       p2p,
		Image:            digest,
		Env:              e.Label,
		Source:           "synthetic",
		Strategy:         c.Strategy,
		Modifier:         c.Modifier,
	}
	return slot, nil
}

// manifestDigest reads an image manifest file's digest; "" for a
// directory env (no file).
func manifestDigest(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	var m struct {
		Digest string `json:"digest"`
	}
	err := format.ReadJSON(path, &m)
	return m.Digest, err
}

// judgeReal decides one real instance.
func judgeReal(r PlanReal) (*Slot, error) {
	var t format.Task
	var san gitrepo.Report
	var res Results
	for path, v := range map[string]any{r.Instance: &t, r.Sanitize: &san, r.Results: &res} {
		if err := format.ReadJSON(path, v); err != nil {
			return nil, err
		}
	}
	slot := &Slot{Env: t.Repo, LateAncestors: san.LateAncestors}
	// The sanitiser's report is information (late_ancestors): a base
	// newer than created_at is no leak; the audit in the env decides.
	why := res.Git.Leak()
	if res.EnvFailed != "" {
		why = "the env did not build: " + res.EnvFailed
	}
	if why == "" {
		why = CheckReal(t.FailToPass, t.PassToPass, res.Runs["before"], res.Runs["after"])
	}
	if why != "" {
		slot.Rejected = &Rejection{InstanceID: t.InstanceID, Env: r.Env, Reason: why}
		return slot, nil
	}
	digest, err := manifestDigest(r.Manifest)
	if err != nil {
		return nil, err
	}
	t.Image, t.Env, t.Source = digest, r.Env, "real"
	slot.Task = &t
	return slot, nil
}

// merge adds a task set's tasks and report to the ones being collected.
func merge(dir string, rep *Report, out *[]format.Task) error {
	var r Report
	if err := format.ReadJSON(filepath.Join(dir, ReportFile), &r); err != nil {
		return err
	}
	rep.Candidates += r.Candidates
	rep.Kept += r.Kept
	rep.Rejected = append(rep.Rejected, r.Rejected...)
	for id, n := range r.LateAncestors {
		rep.addLate(id, n)
	}
	for k, v := range r.PerEnv {
		c := rep.PerEnv[k]
		c.Candidates += v.Candidates
		c.Kept += v.Kept
		rep.PerEnv[k] = c
	}
	for k, v := range r.Strategies {
		if rep.Strategies == nil {
			rep.Strategies = map[string]string{}
		}
		if old, ok := rep.Strategies[k]; !ok || old == "" && v != "" {
			rep.Strategies[k] = v
		}
	}
	path := filepath.Join(dir, TasksFile)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for n := 1; sc.Scan(); n++ {
		var t format.Task
		if err := format.DecodeLine(path, n, sc.Bytes(), &t); err != nil {
			return err
		}
		*out = append(*out, t)
	}
	return sc.Err()
}
