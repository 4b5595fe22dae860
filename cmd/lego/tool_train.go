package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/legobuild/lego/rules/swe"
	"github.com/legobuild/lego/rules/swe/agent"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/mask"
	"github.com/legobuild/lego/rules/swe/paper"
	"github.com/legobuild/lego/rules/swe/tasks"
	"github.com/legobuild/lego/rules/swe/tiny"
	"github.com/legobuild/lego/rules/swe/tts"
	"github.com/legobuild/lego/rules/swe/verify"
)

// TrainStats is what tiny-train writes beside the checkpoint.
type TrainStats struct {
	Mode     string `json:"mode"`
	Examples int    `json:"examples"`
	Windows  int    `json:"windows"`
	Trained  int    `json:"trained_bytes"` // targets that carry loss
	Resolved int    `json:"resolved,omitempty"`
}

// toolTinyTrain trains a torch_tiny checkpoint: an SFT stage (mode sft,
// on a masked_dataset or a curriculum stage) or a verifier (generative or
// regressive, on trajectories).
func toolTinyTrain(ctx context.Context, args []string) error {
	return dirTool("tiny-train", args, func(fs *flag.FlagSet) func(string) error {
		mode := fs.String("mode", "sft", "sft, generative or regressive")
		dataset := fs.String("dataset", "", "sft: a directory with dataset_info.json")
		datasetName := fs.String("dataset-name", "", "sft: the dataset to train on (default: the only one)")
		turnMask := fs.Bool("turn-mask", true, "sft: masked turns get no loss")
		var trajs list
		fs.Var(&trajs, "trajectories", "verifier: rollout outputs or trajectory files (repeatable)")
		base := fs.String("base", "tiny-64x2", "the model: tiny-<dim>x<layers>")
		maxLen := fs.Int("max-len", tiny.MaxCtx, "window, at most 256")
		epochs := fs.Int("epochs", 1, "epochs")
		batch := fs.Int("batch", 16, "windows per step")
		lr := fs.Float64("lr", 3e-3, "learning rate")
		seed := fs.Int64("seed", 0, "seed")
		init := fs.String("init", "", "a checkpoint to start from")
		return func(out string) error {
			cfg, err := tiny.ParseBase(*base, *maxLen)
			if err != nil {
				return err
			}
			d := &tiny.Data{Ctx: cfg.Ctx}
			st := TrainStats{Mode: *mode}
			switch *mode {
			case "sft":
				err = tiny.ReadSFT(*dataset, *datasetName, func(_ string, _ int, turns []tiny.Turn) error {
					if !*turnMask {
						for i := range turns {
							turns[i].Train = turns[i].Role == "assistant"
						}
					}
					st.Examples++
					d.AddLM(tiny.Render(turns))
					return nil
				})
			case "generative", "regressive":
				for _, in := range trajs {
					err = tiny.ReadTrajectories(in, func(t *format.Trajectory) error {
						text, _ := tiny.Render(tiny.TrimFinal(tiny.TurnsOfMessages(t.Messages)))
						d.AddJudged(text, t.Resolved, *mode == "generative")
						st.Examples++
						if t.Resolved {
							st.Resolved++
						}
						return nil
					})
					if err != nil {
						break
					}
				}
				if err == nil && (st.Resolved == 0 || st.Resolved == st.Examples) {
					err = fmt.Errorf("a verifier needs resolved and unresolved trajectories; these %d have %d resolved", st.Examples, st.Resolved)
				}
			default:
				err = fmt.Errorf("--mode %q: want sft, generative or regressive", *mode)
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			st.Windows, st.Trained = d.Windows(), d.Trained()
			err = tiny.Train(ctx, tiny.Job{Model: cfg, Mode: *mode, Epochs: *epochs, Batch: *batch, LR: *lr, Seed: *seed, Init: *init}, d, out, os.Stdout)
			if err != nil {
				return err
			}
			return format.WriteJSON(filepath.Join(out, "train.json"), st)
		}
	})
}

// rankedPolicy makes the offline policy of a torch_tiny checkpoint: the
// checkpoint ranks the plan's candidates by their mean log-probability.
func rankedPolicy(b []byte, path string, task format.Task, testCmd, framework string, seed int64) (func(string) (agent.Policy, error), error) {
	var rc swe.RankedConfig
	if err := json.Unmarshal(b, &rc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m, err := tiny.Load(rc.Checkpoint)
	if err != nil {
		return nil, err
	}
	rank := func(msgs []llm.Message, cands []llm.Message) ([]float64, error) {
		text, _ := tiny.Render(tiny.TurnsOfMessages(agent.FormatMessages(msgs)))
		text = append(text, tiny.AssistantHead...)
		out := make([]float64, len(cands))
		for i, c := range agent.FormatMessages(cands) {
			out[i] = m.MeanLogProb(text, decisive(mask.RenderAssistant(c).String()))
		}
		return out, nil
	}
	return func(workdir string) (agent.Policy, error) {
		return agent.NewRanked(agent.ScriptedTask{Workdir: workdir, GoldPatch: task.Patch, TestCmd: testCmd, Framework: framework, Tests: reproTests(task)},
			rank, rc.Temperature, seed)
	}, nil
}

// decisive is the part of a rendered candidate that says what it does: its
// thought and the name of its first tool. The arguments that follow (paths,
// code) are long and alike across candidates, and would drown the choice
// in the mean.
func decisive(rendered string) []byte {
	const name = `{"name":"`
	if i := strings.Index(rendered, name); i >= 0 {
		if j := strings.IndexByte(rendered[i+len(name):], '"'); j >= 0 {
			return []byte(rendered[:i+len(name)+j+1])
		}
	}
	return []byte(rendered)
}

// judgeWith scores trajectories with a torch_tiny verifier, or with a
// served one: its next-token log-probabilities after the judgement marker.
func judgeWith(ctx context.Context, dir, endpoint string) (func(*format.Trajectory) (tiny.Verdict, error), error) {
	if endpoint == "" {
		m, err := tiny.Load(dir)
		if err != nil {
			return nil, err
		}
		return func(t *format.Trajectory) (tiny.Verdict, error) {
			text, _ := tiny.Render(tiny.TrimFinal(tiny.TurnsOfMessages(t.Messages)))
			return m.Judge(text), nil
		}, nil
	}
	c, err := endpointClient(endpoint)
	if err != nil {
		return nil, err
	}
	return func(t *format.Trajectory) (tiny.Verdict, error) {
		top, err := c.NextTokens(ctx, []llm.Message{{Role: "system", Content: verify.SystemPrompt},
			{Role: "user", Content: verify.Prompt(t)}, {Role: "assistant", Content: verify.Marker}}, 20)
		if err != nil {
			return tiny.Verdict{}, err
		}
		score, yes, no, err := verify.Score(top)
		return tiny.Verdict{Score: score, LogitYes: yes, LogitNo: no}, err
	}, nil
}

// toolVerifierData writes a LLaMA-Factory verifier's training data: per
// trajectory, the released prompt and the judgement, as sharegpt.
func toolVerifierData(_ context.Context, args []string) error {
	return dirTool("verifier-data", args, func(fs *flag.FlagSet) func(string) error {
		var trajs list
		fs.Var(&trajs, "trajectories", "rollout outputs or trajectory files (repeatable)")
		name := fs.String("name", "verifier", "the dataset's name in dataset_info.json")
		return func(out string) error {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			w, err := format.Create(filepath.Join(out, mask.DataFile))
			if err != nil {
				return err
			}
			n, resolved := 0, 0
			type turn struct {
				From  string `json:"from"`
				Value string `json:"value"`
			}
			for _, in := range trajs {
				err = tiny.ReadTrajectories(in, func(t *format.Trajectory) error {
					n++
					if t.Resolved {
						resolved++
					}
					return w.WriteJSONLine(map[string]any{"system": verify.SystemPrompt, "instance_id": t.InstanceID,
						"conversations": []turn{{"human", verify.Prompt(t)}, {"gpt", verify.Label(t.Resolved)}}})
				})
				if err != nil {
					w.Abort()
					return err
				}
			}
			if err := w.Commit(); err != nil {
				return err
			}
			if resolved == 0 || resolved == n {
				return fmt.Errorf("a verifier needs resolved and unresolved trajectories; these %d have %d resolved", n, resolved)
			}
			return format.WriteJSON(filepath.Join(out, mask.InfoFile), map[string]format.DatasetInfo{*name: format.InfoFor(mask.DataFile, format.ShareGPT)})
		}
	})
}

// toolVerifierEval scores a verifier_eval's rollouts with the verifier and
// writes eval.json (paper.Eval), eval.md and scores.json (per instance,
// each run's ground truth, predicted score and logits).
func toolVerifierEval(ctx context.Context, args []string) error {
	return dirTool("verifier-eval", args, func(fs *flag.FlagSet) func(string) error {
		plan := fs.String("plan", "", "the rollout outcome files, as a JSON list")
		verifier := fs.String("verifier", "", "the verifier checkpoint (torch_tiny)")
		endpoint := fs.String("verifier-endpoint", "", "instead: the settings of a served verifier (model_endpoint)")
		k := fs.Int("k", 16, "rollouts per instance")
		name := fs.String("name", "", "the evaluation's name")
		return func(out string) error {
			var files []string
			if err := tasks.ReadJSON(*plan, &files); err != nil {
				return err
			}
			judge, err := judgeWith(ctx, *verifier, *endpoint)
			if err != nil {
				return err
			}
			type scored struct {
				Run            int     `json:"run"`
				Score          int     `json:"score"` // ground truth: resolved
				PredictedScore float64 `json:"predicted_score"`
				LogitYes       float64 `json:"logit_yes"`
				LogitNo        float64 `json:"logit_no"`
			}
			runs := map[string][]paper.Run{}
			scores := map[string][]scored{}
			for _, f := range files {
				var o agent.Outcome
				if err := tasks.ReadJSON(f, &o); err != nil {
					return err
				}
				t := o.Trajectory
				if t == nil {
					continue // a slot that is no task
				}
				v, err := judge(t)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				runs[t.InstanceID] = append(runs[t.InstanceID], paper.Run{Run: t.Sample, Resolved: t.Resolved, PredictedScore: v.Score, Turns: t.Turns})
				truth := 0
				if t.Resolved {
					truth = 1
				}
				scores[t.InstanceID] = append(scores[t.InstanceID], scored{t.Sample, truth, v.Score, v.LogitYes, v.LogitNo})
			}
			if len(runs) == 0 {
				return fmt.Errorf("no rollouts to evaluate")
			}
			for id, rs := range scores {
				sort.Slice(rs, func(a, b int) bool { return rs[a].Run < rs[b].Run })
				scores[id] = rs
			}
			e := tts.Summarize(*name, *k, runs)
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := format.WriteJSON(filepath.Join(out, paper.FileName), e); err != nil {
				return err
			}
			if err := format.WriteJSON(filepath.Join(out, "scores.json"), scores); err != nil {
				return err
			}
			f, err := os.Create(filepath.Join(out, "eval.md"))
			if err != nil {
				return err
			}
			err = tts.Markdown(f, e)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			fmt.Printf("%s: %d instances, K=%d: Pass@1 %.1f%%, TTS@%d %.1f%%, Best@%d %.1f%%\n", *name, e.Instances, *k, 100*e.Pass1, *k, 100*e.TTS, *k, 100*e.Best)
			return err
		}
	})
}
