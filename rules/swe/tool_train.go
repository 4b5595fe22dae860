package swe

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/agent"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tiny"
	"github.com/legobuild/lego/rules/swe/tts"
	"github.com/legobuild/lego/rules/swe/verify"
)

// The tools of sft_checkpoint, verifier and verifier_eval.
var (
	tinyTrain = legotool.Register(&legotool.Tool{Name: "tiny-train", Run: runTinyTrain,
		Usage: "train a torch_tiny checkpoint: an SFT stage or a verifier"})
	verifierData = legotool.Register(&legotool.Tool{Name: "verifier-data", Run: runVerifierData,
		Usage: "write a LLaMA-Factory verifier's training data"})
	verifierEval = legotool.Register(&legotool.Tool{Name: "verifier-eval", Run: runVerifierEval,
		Usage: "score rollouts with a verifier and write Pass@1, TTS@k and Best@k"})
)

// runTinyTrain trains a torch_tiny checkpoint: an SFT stage (mode sft,
// on a masked_dataset or a curriculum stage) or a verifier (generative or
// regressive, on trajectories).
func runTinyTrain(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		var in tiny.Input
		fs.StringVar(&in.Mode, "mode", "sft", "sft, generative or regressive")
		fs.StringVar(&in.Dataset, "dataset", "", "sft: a directory with dataset_info.json")
		fs.StringVar(&in.DatasetName, "dataset-name", "", "sft: the dataset to train on (default: the only one)")
		fs.BoolVar(&in.TurnMask, "turn-mask", true, "sft: masked turns get no loss")
		var trajs legotool.Strings
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
			in.Trajectories = trajs
			d, st, err := tiny.ReadInput(in, cfg.Ctx)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			err = tiny.Train(ctx, tiny.Job{Model: cfg, Mode: in.Mode, Epochs: *epochs, Batch: *batch, LR: *lr, Seed: *seed, Init: *init}, d, out, os.Stdout)
			if err != nil {
				return err
			}
			return format.WriteJSON(filepath.Join(out, "train.json"), st)
		}
	})
}

// runVerifierData writes a LLaMA-Factory verifier's training data: per
// trajectory, the released prompt and the judgement, as sharegpt.
func runVerifierData(_ context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		var trajs legotool.Strings
		fs.Var(&trajs, "trajectories", "rollout outputs or trajectory files (repeatable)")
		name := fs.String("name", "verifier", "the dataset's name in dataset_info.json")
		return func(out string) error { return verify.WriteData(trajs, out, *name) }
	})
}

// runVerifierEval scores a verifier_eval's rollouts with the verifier and
// writes eval.json (tts.Eval), eval.md and scores.json (per instance,
// each run's ground truth, predicted score and logits).
func runVerifierEval(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return dirTool(fs, args, func(fs *flag.FlagSet) func(string) error {
		plan := fs.String("plan", "", "the rollout outcome files, as a JSON list")
		verifier := fs.String("verifier", "", "the verifier checkpoint (torch_tiny)")
		endpoint := fs.String("verifier-endpoint", "", "instead: the settings of a served verifier (model_endpoint)")
		k := fs.Int("k", 16, "rollouts per instance")
		name := fs.String("name", "", "the evaluation's name")
		return func(out string) error {
			var files []string
			if err := format.ReadJSON(*plan, &files); err != nil {
				return err
			}
			judge, err := verify.NewJudge(ctx, *verifier, *endpoint)
			if err != nil {
				return err
			}
			var res tts.Results
			for _, f := range files {
				o, err := agent.ReadOutcome(f)
				if err != nil {
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
				res.Add(t.InstanceID, t.Sample, t.Turns, t.Resolved, v.Score, v.LogitYes, v.LogitNo)
			}
			e, err := res.Write(out, *name, *k)
			if e != nil {
				fmt.Printf("%s: %d instances, K=%d: Pass@1 %.1f%%, TTS@%d %.1f%%, Best@%d %.1f%%\n", *name, e.Instances, *k, 100*e.Pass1, *k, 100*e.TTS, *k, 100*e.Best)
			}
			return err
		}
	})
}
