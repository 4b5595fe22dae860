package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/gitrepo"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// toolSnapshot copies source files into a tree, paths relative to --strip
// (git_repo with a path: a source snapshot without history).
func toolSnapshot(_ context.Context, args []string) error {
	return dirTool("repo-snapshot", args, func(fs *flag.FlagSet) func(string) error {
		strip := fs.String("strip", "", "path prefix the files lose in the tree")
		var srcs list
		fs.Var(&srcs, "src", "a file of the snapshot (repeatable)")
		return func(out string) error {
			prefix := strings.TrimSuffix(*strip, "/") + "/"
			for _, src := range srcs {
				rel, ok := strings.CutPrefix(src, prefix)
				if !ok || rel == "" {
					return fmt.Errorf("%s is not under %s", src, *strip)
				}
				if err := copyFile(src, filepath.Join(out, rel)); err != nil {
					return err
				}
			}
			return os.MkdirAll(out, 0o755)
		}
	})
}

func copyFile(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// toolCollect judges a task set's runs (see tasks.Plan).
func toolCollect(_ context.Context, args []string) error {
	return dirTool("task-collect", args, func(fs *flag.FlagSet) func(string) error {
		planPath := fs.String("plan", "", "the plan the task_set rule wrote")
		return func(out string) error {
			b, err := os.ReadFile(*planPath)
			if err != nil {
				return err
			}
			var p tasks.Plan
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("%s: %v", *planPath, err)
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

// toolGitFetch is git_repo with a url or bundle: the whole history, and
// the files at the commit.
func toolGitFetch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("git-fetch", flag.ContinueOnError)
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

// toolGitSanitize writes a real task's .git: no history after created_at.
func toolGitSanitize(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("git-sanitize", flag.ContinueOnError)
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

// toolEnvDir makes a directory env (swe_env with form "dir"): the tree,
// with the install steps run in it on the host.
func toolEnvDir(ctx context.Context, args []string) error {
	return dirTool("env-dir", args, func(fs *flag.FlagSet) func(string) error {
		tree := fs.String("tree", "", "the repository's files")
		var steps list
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

// toolLLMRewrite has a model write one site's function body again
// (task_set's llm_rewrite strategy) and writes the candidate.
func toolLLMRewrite(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("llm-rewrite", flag.ContinueOnError)
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
	if err := tasks.ReadJSON(*sitesPath, &sites); err != nil {
		return err
	}
	c := tasks.Candidate{Empty: true, Reason: fmt.Sprintf("the repository has %d functions with a docstring to rewrite", len(sites.Sites))}
	if *index < len(sites.Sites) {
		client, err := endpointClient(*endpoint)
		if err != nil {
			return err
		}
		s := sites.Sites[*index]
		seed := sites.Seed*1000 + int64(*index)
		r, err := client.Chat(ctx, tasks.RewritePrompt(s), nil, &seed)
		if err != nil {
			return fmt.Errorf("rewriting %s in %s: %w", s.Function, s.File, err)
		}
		c = tasks.ApplyRewrite(sites.Repo, sites.Seed, s, r.Message.Content)
	}
	return format.WriteJSON(*out, c)
}

// toolTaskIssue has a model write the problem statement of a synthetic
// candidate that its tests keep; for one they reject it writes why.
func toolTaskIssue(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("task-issue", flag.ContinueOnError)
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
		if err := tasks.ReadJSON(p, v); err != nil {
			return err
		}
	}
	issue := tasks.Issue{}
	f2p, _, why := tasks.Judge(base.Runs["clean"], res.Runs["bug"])
	switch {
	case c.Empty || res.Empty:
		issue.Skipped = "empty candidate"
	case why != "":
		issue.Skipped = why
	default:
		client, err := endpointClient(*endpoint)
		if err != nil {
			return err
		}
		r, err := client.Chat(ctx, tasks.IssuePrompt(c, f2p, res.Runs["bug"]), nil, &c.Seed)
		if err != nil {
			return fmt.Errorf("writing the issue of %s: %w", c.InstanceID, err)
		}
		issue.ProblemStatement = strings.TrimSpace(r.Message.Content) + "\n"
	}
	return format.WriteJSON(*out, issue)
}

func endpointClient(path string) (*llm.Client, error) {
	cfg, err := llm.ReadConfig(path)
	if err != nil {
		return nil, err
	}
	c, err := llm.New(*cfg)
	if err != nil {
		return nil, err
	}
	// The client holds the key now; the commands this process runs for
	// an agent must not find it in their environment.
	if cfg.APIKeyEnv != "" {
		os.Unsetenv(cfg.APIKeyEnv)
	}
	return c, nil
}

// toolJudge decides one candidate or instance of a task set (see
// tasks.SlotSpec) and writes its verdict.
func toolJudge(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("task-judge", flag.ContinueOnError)
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
	return format.WriteJSON(*out, slot)
}
