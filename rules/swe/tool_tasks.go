package swe

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// The tools of git_repo, swe_env and task_set.
var (
	repoSnapshot = legotool.Register(&legotool.Tool{Name: "repo-snapshot", Run: runSnapshot,
		Usage: "copy source files into a tree (git_repo with a path)"})
	gitFetch = legotool.Register(&legotool.Tool{Name: "git-fetch", Run: runGitFetch,
		Usage: "fetch a repository and the files at a commit (git_repo with a url or bundle)"})
	gitSanitize = legotool.Register(&legotool.Tool{Name: "git-sanitize", Run: runGitSanitize,
		Usage: "write a real task's .git with no history after its creation"})
	envDir = legotool.Register(&legotool.Tool{Name: "env-dir", Run: runEnvDir,
		Usage: "make a directory env: the tree with the install steps run in it"})
	taskCollect = legotool.Register(&legotool.Tool{Name: "task-collect", Run: runCollect,
		Usage: "join a task set's verdicts into its instances and report"})
	rewriteTool = legotool.Register(&legotool.Tool{Name: "llm-rewrite", Run: runLLMRewrite,
		Usage: "have a model write one function body again (a synthetic candidate)"})
	taskIssue = legotool.Register(&legotool.Tool{Name: "task-issue", Run: runTaskIssue,
		Usage: "have a model write a kept candidate's problem statement"})
	taskJudge = legotool.Register(&legotool.Tool{Name: "task-judge", Run: runJudge,
		Usage: "decide one candidate or instance of a task set"})
)

func runSnapshot(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		strip := fs.String("strip", "", "path prefix the files lose in the tree")
		var srcs legotool.Strings
		fs.Var(&srcs, "src", "a file of the snapshot (repeatable)")
		return func(out string) error { return gitrepo.Snapshot(srcs, *strip, out) }
	})
}

// runCollect judges a task set's runs (see tasks.Plan).
func runCollect(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		planPath := fs.String("plan", "", "the plan the task_set rule wrote")
		return func(out string) error {
			var p tasks.Plan
			if err := format.ReadJSON(*planPath, &p); err != nil {
				return err
			}
			rep, err := tasks.Collect(&p, out)
			if err != nil {
				return err
			}
			fmt.Printf("%d of %d candidates kept\n", rep.Kept, rep.Candidates)
			return nil
		}
	})
}

func runGitFetch(ctx context.Context, fs *flag.FlagSet, args []string) error {
	src := fs.String("src", "", "a git URL, repository or bundle")
	commit := fs.String("commit", "", "the commit whose files make the tree (40 hex digits)")
	gitDir := fs.String("git", "", "output: a bare repository with every ref of src")
	tree := fs.String("tree", "", "output: the files at commit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *src == "" || *gitDir == "" || *tree == "" || fs.NArg() > 0 {
		return fmt.Errorf("needs --src, --commit, --git and --tree")
	}
	if err := gitrepo.Fetch(ctx, *src, *commit, *gitDir, *tree); err != nil {
		os.RemoveAll(*gitDir)
		os.RemoveAll(*tree)
		return err
	}
	return nil
}

func runGitSanitize(ctx context.Context, fs *flag.FlagSet, args []string) error {
	gitDir := fs.String("git", "", "the repository (git_repo's history)")
	commit := fs.String("commit", "", "the task's base commit")
	before := fs.String("before", "", "created_at: nothing dated later stays (RFC 3339)")
	out := fs.String("out", "", "output: the .git directory")
	report := fs.String("report", "", "output: what was kept, as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *gitDir == "" || *out == "" || *report == "" || fs.NArg() > 0 {
		return fmt.Errorf("needs --git, --commit, --before, --out and --report")
	}
	t, err := time.Parse(time.RFC3339, *before)
	if err != nil {
		return fmt.Errorf("--before: %v", err)
	}
	rep, err := gitrepo.Sanitize(ctx, *gitDir, *commit, t, *out)
	if err != nil {
		os.RemoveAll(*out)
		return err
	}
	return format.WriteJSON(*report, rep)
}

// runEnvDir makes a directory env (swe_env with form "dir"): the tree,
// with the install steps run in it on the host.
func runEnvDir(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		tree := fs.String("tree", "", "the repository's files")
		var steps legotool.Strings
		fs.Var(&steps, "run", "a shell command run in the env directory (repeatable)")
		return func(out string) error {
			if err := os.CopyFS(out, os.DirFS(*tree)); err != nil {
				return err
			}
			for i, s := range steps {
				cmd := exec.CommandContext(ctx, "bash", "-ec", s)
				cmd.Dir, cmd.Stdout, cmd.Stderr = out, os.Stdout, os.Stderr
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("install step %d (%s): %v", i, s, err)
				}
			}
			return nil
		}
	})
}

// opener opens the model of a model_endpoint's settings file.
func opener(path string) func() (*llm.Client, error) {
	return func() (*llm.Client, error) { return llm.Open(path) }
}

func runLLMRewrite(ctx context.Context, fs *flag.FlagSet, args []string) error {
	endpoint := fs.String("endpoint", "", "the model_endpoint's settings")
	sitesPath := fs.String("sites", "", "modify.py --rewrite-sites output")
	index := fs.Int("index", 0, "which site")
	out := fs.String("out", "", "output: the candidate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || *sitesPath == "" || *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("needs --endpoint, --sites, --index and --out")
	}
	var sites tasks.Sites
	if err := format.ReadJSON(*sitesPath, &sites); err != nil {
		return err
	}
	c, err := tasks.RewriteSite(ctx, &sites, *index, opener(*endpoint))
	if err != nil {
		return err
	}
	return format.WriteJSON(*out, c)
}

func runTaskIssue(ctx context.Context, fs *flag.FlagSet, args []string) error {
	endpoint := fs.String("endpoint", "", "the model_endpoint's settings")
	candPath := fs.String("candidate", "", "the candidate")
	resultsPath := fs.String("results", "", "harness results of the candidate's run")
	baselinePath := fs.String("baseline", "", "harness results of the clean run")
	out := fs.String("out", "", "output: {\"problem_statement\": ...} or {\"skipped\": why}")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c tasks.Candidate
	var res, base tasks.Results
	for p, v := range map[string]any{*candPath: &c, *resultsPath: &res, *baselinePath: &base} {
		if err := format.ReadJSON(p, v); err != nil {
			return err
		}
	}
	issue, err := tasks.WriteIssue(ctx, c, res, base, opener(*endpoint))
	if err != nil {
		return err
	}
	return format.WriteJSON(*out, issue)
}

// runJudge decides one candidate or instance of a task set (see
// tasks.SlotSpec) and writes its verdict.
func runJudge(_ context.Context, fs *flag.FlagSet, args []string) error {
	spec := fs.String("spec", "", "the slot, as tasks.SlotSpec JSON")
	out := fs.String("out", "", "output: the verdict (tasks.Slot)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var s tasks.SlotSpec
	if err := json.Unmarshal([]byte(*spec), &s); err != nil || *out == "" {
		return fmt.Errorf("needs --spec (JSON) and --out: %v", err)
	}
	slot, err := tasks.JudgeSlot(s)
	if err != nil {
		return err
	}
	if err := format.WriteJSON(*out, slot); err != nil {
		return err
	}
	// The count on the status line (engine.Action.Tally).
	switch {
	case slot.Task != nil:
		fmt.Println(executors.TallyLine("kept"))
	case slot.Rejected != nil:
		fmt.Println(executors.TallyLine("dropped"))
	}
	return nil
}
