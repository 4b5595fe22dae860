package tasks

import (
	"bufio"
	"encoding/json"
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
	Envs       []PlanEnv         `json:"envs,omitempty"`
	Sets       []string          `json:"sets,omitempty"` // merge: task set directories
	Real       []PlanReal        `json:"real,omitempty"`
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
	Name       string     `json:"name"`     // the repo name
	Label      string     `json:"label"`    // the swe_env target
	Manifest   string     `json:"manifest"` // its image manifest file ("" for a directory env)
	Baseline   string     `json:"baseline"` // harness results of the clean run
	Candidates []PlanCand `json:"candidates"`
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
	case "synthetic":
		for _, e := range p.Envs {
			tasks, err := collectEnv(e, rep)
			if err != nil {
				return nil, err
			}
			out = append(out, tasks...)
		}
	case "real":
		for _, r := range p.Real {
			t, err := collectReal(r, rep)
			if err != nil {
				return nil, err
			}
			if t != nil {
				out = append(out, *t)
			}
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
		b, err := json.Marshal(t)
		if err != nil {
			w.Abort()
			return nil, err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			w.Abort()
			return nil, err
		}
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return rep, format.WriteJSON(filepath.Join(outDir, ReportFile), rep)
}

func collectEnv(e PlanEnv, rep *Report) ([]format.Task, error) {
	var base Results
	if err := ReadJSON(e.Baseline, &base); err != nil {
		return nil, err
	}
	clean, ok := base.Runs["clean"]
	if !ok {
		return nil, fmt.Errorf("%s: no clean run", e.Baseline)
	}
	var m struct {
		Digest string `json:"digest"`
	}
	if e.Manifest != "" {
		if err := ReadJSON(e.Manifest, &m); err != nil {
			return nil, err
		}
	}
	// Synthetic tasks start from an env with no history at all.
	envWhy := ""
	if base.Git != nil && base.Git.Present {
		envWhy = "the env holds a git history; a synthetic task's env must have none"
	}
	count := rep.PerEnv[e.Name]
	var out []format.Task
	for _, pc := range e.Candidates {
		var c Candidate
		if err := ReadJSON(pc.Candidate, &c); err != nil {
			return nil, err
		}
		if c.Empty {
			continue
		}
		var res Results
		if err := ReadJSON(pc.Results, &res); err != nil {
			return nil, err
		}
		count.Candidates++
		rep.Candidates++
		bug, ok := res.Runs["bug"]
		if !ok {
			return nil, fmt.Errorf("%s: no bug run", pc.Results)
		}
		f2p, p2p, why := Judge(clean, bug)
		if envWhy != "" {
			why = envWhy
		}
		if why != "" {
			rep.Rejected = append(rep.Rejected, Rejection{InstanceID: c.InstanceID, Env: e.Label, Reason: why})
			continue
		}
		statement := ProblemStatement(f2p, bug)
		if pc.Issue != "" {
			var is Issue
			if err := ReadJSON(pc.Issue, &is); err != nil {
				return nil, err
			}
			if is.ProblemStatement == "" {
				return nil, fmt.Errorf("%s: no problem statement for kept candidate %s (%s)", pc.Issue, c.InstanceID, is.Skipped)
			}
			statement = is.ProblemStatement
		}
		count.Kept++
		rep.Kept++
		out = append(out, format.Task{
			InstanceID:       c.InstanceID,
			Repo:             c.Repo,
			Patch:            c.Patch,
			BugPatch:         c.BugPatch,
			ProblemStatement: statement,
			FailToPass:       f2p,
			PassToPass:       p2p,
			Image:            m.Digest,
			Env:              e.Label,
			Source:           "synthetic",
			Strategy:         c.Strategy,
			Modifier:         c.Modifier,
		})
	}
	rep.PerEnv[e.Name] = count
	return out, nil
}

// collectReal judges one real instance; it returns nil if the instance is
// rejected.
func collectReal(r PlanReal, rep *Report) (*format.Task, error) {
	var t format.Task
	var san gitrepo.Report
	var res Results
	var m struct {
		Digest string `json:"digest"`
	}
	for path, v := range map[string]any{r.Instance: &t, r.Sanitize: &san, r.Results: &res, r.Manifest: &m} {
		if path == "" {
			continue // no manifest: a directory env
		}
		if err := ReadJSON(path, v); err != nil {
			return nil, err
		}
	}
	count := rep.PerEnv[t.Repo]
	count.Candidates++
	rep.Candidates++
	defer func() { rep.PerEnv[t.Repo] = count }()
	why := san.Error
	if why == "" {
		why = res.Git.Leak()
	}
	if why == "" {
		why = CheckReal(t.FailToPass, t.PassToPass, res.Runs["before"], res.Runs["after"])
	}
	if why != "" {
		rep.Rejected = append(rep.Rejected, Rejection{InstanceID: t.InstanceID, Env: r.Env, Reason: why})
		return nil, nil
	}
	count.Kept++
	rep.Kept++
	t.Image, t.Env, t.Source = m.Digest, r.Env, "real"
	return &t, nil
}

// merge adds a task set's tasks and report to the ones being collected.
func merge(dir string, rep *Report, out *[]format.Task) error {
	var r Report
	if err := ReadJSON(filepath.Join(dir, ReportFile), &r); err != nil {
		return err
	}
	rep.Candidates += r.Candidates
	rep.Kept += r.Kept
	rep.Rejected = append(rep.Rejected, r.Rejected...)
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

// ReadJSON decodes the JSON file at path into v; errors name the file.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}
