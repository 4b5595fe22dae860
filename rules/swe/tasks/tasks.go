// Package tasks makes task sets: it judges test runs of candidate bugs
// (synthetic tasks) and of pull requests (real tasks) and writes the
// validated instances with a report of what was dropped and why.
//
// The test runs happen inside the task environments, by two Python
// programs shipped with lego (embedded here and written into the build by
// the task_set rule): harness.py applies patches, runs the env's test
// command and reports each test's status; modify.py proposes bugs by
// procedural AST modifications. This package only reads their JSON.
package tasks

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Harness and Modifier are the Python programs run in the environments.
var (
	//go:embed harness.py
	Harness []byte
	//go:embed modify.py
	Modifier []byte
)

// Statuses harness.py reports.
const (
	Passed  = "PASSED"
	Failed  = "FAILED"
	Error   = "ERROR"
	Skipped = "SKIPPED"
)

// Run is one test run of harness.py.
type Run struct {
	ExitCode *int              `json:"exit_code"`
	Tests    map[string]string `json:"tests"`
	Messages map[string]string `json:"messages"`
	LogTail  string            `json:"log_tail"`
	TimedOut int               `json:"timed_out,omitempty"` // killed after this many seconds
	Error    string            `json:"error,omitempty"`     // a patch did not apply
}

// Results is harness.py's output.
type Results struct {
	Runs  map[string]Run `json:"runs"`
	Empty bool           `json:"empty,omitempty"` // the candidate was empty: nothing ran
	Cwd   string         `json:"cwd,omitempty"`   // where the harness ran
	Git   *GitAudit      `json:"git,omitempty"`   // with --git-audit
	Scope *Scope         `json:"scope,omitempty"` // with --scope-from
	// EnvFailed is why the env did not build (an install_config step
	// failed: its number, command, exit code and output's tail); nothing
	// ran.
	EnvFailed string `json:"env_failed,omitempty"`
}

// Scope is which tests the harness ran, with --scope-from PATCH: the
// test files PATCH touches (Mode "touched"), as SWE-bench's harness runs
// them, or the whole suite (Mode "all") when PATCH touches no .py file.
type Scope struct {
	Mode  string   `json:"mode"`            // touched or all
	Files []string `json:"files,omitempty"` // touched: the .py files PATCH leaves in the tree
	Args  []string `json:"args,omitempty"`  // touched: what was appended to the test command
	Why   string   `json:"why,omitempty"`   // all: why the whole suite ran
}

// GitAudit is what the harness saw of the git history in the env, before
// any patch: the guard against an agent reading later commits.
type GitAudit struct {
	Present bool     `json:"present"`           // the tree has a .git
	Commits int      `json:"commits,omitempty"` // commit objects, reachable or not
	After   []string `json:"after,omitempty"`   // commits dated after the audit's time
	LogAll  []string `json:"log_all,omitempty"` // git log --all --reflog: "ID DATE"
	// With --base: the base commit, the commit objects that are neither
	// it nor its ancestors, and how many other objects it does not reach.
	Base              string   `json:"base,omitempty"`
	BeyondBase        []string `json:"beyond_base,omitempty"`
	BeyondBaseObjects int      `json:"beyond_base_objects,omitempty"`
	Error             string   `json:"error,omitempty"`
}

// Leak says why an env's history gives away what came after the task
// began, or "" if it does not. Audited against a base commit (a real
// task), anything beyond the base is a leak and dates are not: the base
// of a rebased pull request is newer than the pull request. Without one,
// any commit dated after the audit's time is.
func (g *GitAudit) Leak() string {
	switch {
	case g == nil:
		return "the env's git history was not audited"
	case g.Error != "":
		return "git history audit: " + g.Error
	case g.Base != "" && len(g.BeyondBase) > 0:
		return fmt.Sprintf("the env's git history holds commit %s, which is not base commit %s or an ancestor of it (%d such commits)",
			g.BeyondBase[0], g.Base, len(g.BeyondBase))
	case g.Base != "" && g.BeyondBaseObjects > 0:
		return fmt.Sprintf("the env's .git holds %d objects that base commit %s does not reach", g.BeyondBaseObjects, g.Base)
	case g.Base == "" && len(g.After) > 0:
		return fmt.Sprintf("the env's git history holds commit %s, dated after created_at", g.After[0])
	}
	return ""
}

// Candidate is one bug modify.py proposes.
type Candidate struct {
	Empty      bool   `json:"empty,omitempty"`
	Reason     string `json:"reason,omitempty"`
	InstanceID string `json:"instance_id"`
	Repo       string `json:"repo"`
	File       string `json:"file"`
	Function   string `json:"function"`
	Modifier   string `json:"modifier"`
	Line       int    `json:"line"`
	BugPatch   string `json:"bug_patch"`
	Patch      string `json:"patch"`
	Strategy   string `json:"strategy"`
	Seed       int64  `json:"seed"`
}

// Issue is a problem statement a model wrote for a candidate, or why
// none was asked for (the candidate was rejected).
type Issue struct {
	ProblemStatement string `json:"problem_statement,omitempty"`
	Skipped          string `json:"skipped,omitempty"`
}

// Judge decides a synthetic candidate from the env's clean test run and
// the run with the bug: FAIL_TO_PASS are the tests that pass clean and not
// with the bug, PASS_TO_PASS those that pass both times (tests that fail
// clean are left out of both). The candidate is kept iff at least one test
// fails with the bug and at least one still passes; reason says why not.
func Judge(baseline, bug Run) (f2p, p2p []string, reason string) {
	switch {
	case baseline.Error != "":
		return nil, nil, "the clean run failed: " + baseline.Error
	case baseline.TimedOut > 0:
		return nil, nil, fmt.Sprintf("the clean run timed out after %d s", baseline.TimedOut)
	case bug.Error != "":
		return nil, nil, "the bug does not apply: " + bug.Error
	case bug.TimedOut > 0:
		// A hang says nothing about which tests catch the bug.
		return nil, nil, fmt.Sprintf("the tests time out with the bug (killed after %d s)", bug.TimedOut)
	case countStatus(baseline, Passed) == 0:
		return nil, nil, "no test passes in the clean environment (exit code " + exitCode(baseline) + ")"
	}
	for _, id := range slices.Sorted(maps.Keys(baseline.Tests)) {
		if baseline.Tests[id] != Passed {
			continue
		}
		if bug.Tests[id] == Passed {
			p2p = append(p2p, id)
		} else {
			f2p = append(f2p, id)
		}
	}
	switch {
	case len(f2p) == 0:
		return nil, nil, "no test fails with the bug"
	case len(p2p) == 0:
		// SWE-smith's rule: a bug that breaks everything says nothing
		// about where it is.
		return nil, nil, "no test passes with the bug (PASS_TO_PASS would be empty)"
	}
	return f2p, p2p, ""
}

// CheckReal validates a real instance from the run with its test patch
// ("before") and the run with the fix on top ("after"): every
// FAIL_TO_PASS test fails before and passes after, every PASS_TO_PASS test
// passes both times. It returns why the instance is invalid, or "".
func CheckReal(f2p, p2p []string, before, after Run) string {
	switch {
	case len(f2p) == 0:
		return "no FAIL_TO_PASS tests"
	case before.Error != "":
		return "test_patch: " + before.Error
	case after.Error != "":
		return "patch: " + after.Error
	case before.TimedOut > 0 || after.TimedOut > 0:
		return "the tests time out"
	}
	for _, t := range f2p {
		if before.Tests[t] == Passed {
			return fmt.Sprintf("FAIL_TO_PASS test %s already passes before the fix", t)
		}
		if s := after.Tests[t]; s != Passed {
			return fmt.Sprintf("FAIL_TO_PASS test %s does not pass with the fix (%s)", t, statusOf(s))
		}
	}
	for _, t := range p2p {
		if s := before.Tests[t]; s != Passed {
			return fmt.Sprintf("PASS_TO_PASS test %s does not pass before the fix (%s)", t, statusOf(s))
		}
		if s := after.Tests[t]; s != Passed {
			return fmt.Sprintf("PASS_TO_PASS test %s does not pass with the fix (%s)", t, statusOf(s))
		}
	}
	return ""
}

// ProblemStatement writes a synthetic task's issue text from its failing
// tests, as a user would report it: what fails and how, not where the bug
// is.
func ProblemStatement(f2p []string, bug Run) string {
	var b strings.Builder
	b.WriteString("After a recent change, some tests fail.\n\nFailing tests:\n")
	const show = 10
	for i, t := range f2p {
		if i == show {
			fmt.Fprintf(&b, "- ... and %d more\n", len(f2p)-show)
			break
		}
		if msg := bug.Messages[t]; msg != "" {
			fmt.Fprintf(&b, "- %s: %s\n", t, msg)
		} else {
			fmt.Fprintf(&b, "- %s (%s)\n", t, statusOf(bug.Tests[t]))
		}
	}
	b.WriteString("\nThe tests are right: fix the code so that they pass again without breaking the other tests.\n")
	return b.String()
}

func statusOf(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}

func exitCode(r Run) string {
	if r.ExitCode == nil {
		return "none"
	}
	return fmt.Sprint(*r.ExitCode)
}

func countStatus(r Run, s string) int {
	n := 0
	for _, v := range r.Tests {
		if v == s {
			n++
		}
	}
	return n
}
