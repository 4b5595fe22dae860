package swe

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/swe/llamafactory"
	"github.com/legobuild/lego/rules/swe/tiny"
)

// trainRules lists sft_checkpoint, verifier and verifier_eval.
func trainRules() []engine.Rule { return []engine.Rule{SFTCheckpoint{}, Verifier{}, VerifierEval{}} }

// Trainers: LLaMA-Factory on GPUs (the paper's), and torch_tiny, the
// offline backend (package tiny) for the example and CI.
const (
	TrainerLlamaFactory = "llamafactory"
	TrainerTiny         = "torch_tiny"
)

// CheckpointInfo is what sft_checkpoint and verifier provide.
type CheckpointInfo struct {
	Dir     *engine.File
	Trainer string
	Base    string
}

type checkpointKey struct{}

// CheckpointOf returns the checkpoint a target provides, or nil.
func CheckpointOf(t *engine.Target) *CheckpointInfo {
	v, _ := t.Providers[checkpointKey{}].(*CheckpointInfo)
	return v
}

// trainTimeout bounds a training run; LLaMA-Factory's 4 epochs over 18k
// long trajectories take about a day on 8 GPUs.
const trainTimeout = 72 * time.Hour

// SFTCheckpoint is sft_checkpoint: full-parameter SFT of base_model (or
// of init, the previous curriculum stage) on a masked_dataset or one
// stage of a curriculum.
type SFTCheckpoint struct{}

func (SFTCheckpoint) Kind() string { return "sft_checkpoint" }

func trainAttrs(lr string, epochs int64) []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "base_model", Type: engine.AttrString, Mandatory: true, Doc: "llamafactory: a hub id or a path in the image (e.g. Qwen/Qwen3-8B); torch_tiny: tiny-<dim>x<layers>, e.g. tiny-64x2"},
		{Name: "trainer", Type: engine.AttrString, Default: TrainerLlamaFactory, Doc: "llamafactory (GPUs, the paper's) or torch_tiny (CPU, the offline backend)"},
		{Name: "epochs", Type: engine.AttrInt, Default: epochs, Doc: "passes over the data"},
		{Name: "global_batch", Type: engine.AttrInt, Default: int64(64), Doc: "sequences per optimiser step (llamafactory: over all GPUs)"},
		{Name: "lr", Type: engine.AttrString, Default: lr, Doc: "learning rate (the paper: 1e-4 for 8B, 5e-5 for 32B)"},
		{Name: "max_len", Type: engine.AttrInt, Default: int64(131072), Doc: "context length (cutoff_len); torch_tiny's window is at most 256 bytes"},
		{Name: "gpus", Type: engine.AttrInt, Default: int64(8), Doc: "llamafactory: GPUs of the run"},
		{Name: "image", Type: engine.AttrLabel, Doc: "llamafactory: an image with LLaMA-Factory (the SWE-Lego fork) installed"},
		{Name: "seed", Type: engine.AttrInt, Default: int64(42), Doc: "training seed (data order, initialisation)"},
	}
}

func (SFTCheckpoint) Attrs() []engine.AttrSpec {
	return append(trainAttrs("1e-4", 4),
		engine.AttrSpec{Name: "dataset", Type: engine.AttrLabel, Mandatory: true, Doc: "a masked_dataset, or a curriculum (then name its stage)"},
		engine.AttrSpec{Name: "stage", Type: engine.AttrInt, Doc: "with a curriculum dataset: the stage (1, 2, ...)"},
		engine.AttrSpec{Name: "init", Type: engine.AttrLabel, Doc: "an sft_checkpoint to start from (curriculum stage k from stage k-1)"},
		engine.AttrSpec{Name: "turn_mask", Type: engine.AttrBool, Default: true, Doc: "honour the data's turn_mask (masked turns get no loss)"},
	)
}

// trainSettings are the attributes both trainers share, checked.
type trainSettings struct {
	trainer, base string
	epochs, batch int
	lr            float64
	maxLen, gpus  int
	seed          int64
	image         *engine.File
	tinyModel     tiny.Config
}

func readTrain(ctx *engine.Context) (*trainSettings, error) {
	s := &trainSettings{trainer: ctx.Attr("trainer").(string), base: ctx.Attr("base_model").(string),
		epochs: int(ctx.Attr("epochs").(int64)), batch: int(ctx.Attr("global_batch").(int64)),
		maxLen: int(ctx.Attr("max_len").(int64)), gpus: int(ctx.Attr("gpus").(int64)), seed: ctx.Attr("seed").(int64)}
	var err error
	if s.lr, err = strconv.ParseFloat(ctx.Attr("lr").(string), 64); err != nil || s.lr <= 0 || s.lr >= 1 {
		return nil, fmt.Errorf("attribute lr: %q is not a learning rate between 0 and 1", ctx.Attr("lr"))
	}
	switch {
	case s.epochs < 1 || s.epochs > 1000:
		return nil, fmt.Errorf("attribute epochs: %d is not between 1 and 1000", s.epochs)
	case s.batch < 1:
		return nil, fmt.Errorf("attribute global_batch: %d is not positive", s.batch)
	case s.maxLen < 32:
		return nil, fmt.Errorf("attribute max_len: %d is under 32", s.maxLen)
	}
	switch s.trainer {
	case TrainerTiny:
		if s.tinyModel, err = tiny.ParseBase(s.base, s.maxLen); err != nil {
			return nil, fmt.Errorf("attribute base_model: %w", err)
		}
	case TrainerLlamaFactory:
		l := ctx.Attr("image").(engine.Label)
		if l == (engine.Label{}) {
			return nil, fmt.Errorf("attribute image: trainer llamafactory runs in an image with LLaMA-Factory installed; none given")
		}
		info := engine.ImageOf(ctx.Dep(l))
		if info == nil {
			return nil, fmt.Errorf("attribute image: %s is a %s, not an image", l, ctx.Dep(l).Kind())
		}
		s.image = info.Manifest
		if s.gpus < 1 {
			return nil, fmt.Errorf("attribute gpus: %d: llamafactory trains on GPUs", s.gpus)
		}
	default:
		return nil, fmt.Errorf("attribute trainer: %q is not %s or %s", s.trainer, TrainerLlamaFactory, TrainerTiny)
	}
	return s, nil
}

func (SFTCheckpoint) Analyze(ctx *engine.Context) error {
	s, err := readTrain(ctx)
	if err != nil {
		return err
	}
	dl := ctx.Attr("dataset").(engine.Label)
	ds := ctx.Files("dataset")
	if len(ds) != 1 || !ds[0].Dir {
		return fmt.Errorf("attribute dataset: %s is no masked_dataset or curriculum (one directory)", dl)
	}
	datasetName := ""
	stage := int(ctx.Attr("stage").(int64))
	dep := ctx.Dep(dl)
	switch {
	case dep.Kind() == Curriculum{}.Kind():
		bins, _ := dep.Attrs["bins"].([]int64)
		if stage < 1 || stage > len(bins) {
			return fmt.Errorf("attribute stage: %s has stages 1 to %d; stage %d", dl, len(bins), stage)
		}
		datasetName = fmt.Sprintf("%s_stage%d", dl.Name, stage)
	case stage != 0:
		return fmt.Errorf("attribute stage: %s is a %s, not a curriculum", dl, dep.Kind())
	}
	var init *CheckpointInfo
	if l := ctx.Attr("init").(engine.Label); l != (engine.Label{}) {
		if init = CheckpointOf(ctx.Dep(l)); init == nil {
			return fmt.Errorf("attribute init: %s is a %s, not an sft_checkpoint", l, ctx.Dep(l).Kind())
		}
		if init.Trainer != s.trainer || init.Base != s.base {
			return fmt.Errorf("attribute init: %s is a %s checkpoint of %s; this one trains %s with %s", l, init.Trainer, init.Base, s.base, s.trainer)
		}
	}
	out, err := declareCheckpoint(ctx, s)
	if err != nil {
		return err
	}
	inputs := []*engine.File{ds[0]}
	if s.trainer == TrainerTiny {
		args := []string{"--mode", "sft", "--dataset", ds[0].Path, "--dataset-name", datasetName,
			"--turn-mask=" + strconv.FormatBool(ctx.Attr("turn_mask").(bool))}
		if init != nil {
			args = append(args, "--init", init.Dir.Path)
			inputs = append(inputs, init.Dir)
		}
		return tinyAction(ctx, s, inputs, out, args...)
	}
	model := s.base
	if init != nil {
		model = init.Dir.Path
		inputs = append(inputs, init.Dir)
	}
	names := []string{datasetName}
	if datasetName == "" {
		names = []string{dl.Name} // masked_dataset registers its data under the target's name
	}
	return lfAction(ctx, s, llamafactory.Train{ModelPath: model, DatasetDir: ds[0].Path, Datasets: names, OutputDir: out.Path,
		CutoffLen: s.maxLen, Epochs: float64(s.epochs), LearningRate: s.lr, GlobalBatch: s.batch, GPUs: s.gpus,
		TurnMask: ctx.Attr("turn_mask").(bool), Seed: int(s.seed)}, inputs, out)
}

// declareCheckpoint declares the target's checkpoint directory and
// provides it.
func declareCheckpoint(ctx *engine.Context, s *trainSettings) (*engine.File, error) {
	out, err := ctx.DeclareFile(ctx.Label().Name, true)
	if err != nil {
		return nil, err
	}
	ctx.Target.Files = []*engine.File{out}
	provide(ctx.Target, checkpointKey{}, &CheckpointInfo{Dir: out, Trainer: s.trainer, Base: s.base})
	return out, nil
}

// tinyAction runs `lego tool tiny-train`: Go renders the data, PyTorch
// (Debian's python3, a tool of the action) trains.
func tinyAction(ctx *engine.Context, s *trainSettings, inputs []*engine.File, out *engine.File, args ...string) error {
	args = append(args, "--base", s.base, "--max-len", strconv.Itoa(s.maxLen), "--epochs", strconv.Itoa(s.epochs),
		"--batch", strconv.Itoa(s.batch), "--lr", strconv.FormatFloat(s.lr, 'g', -1, 64), "--seed", strconv.FormatInt(s.seed, 10), "--out", out.Path)
	a, err := legotool.Action(tinyTrain, nil, inputs, []*engine.File{out}, args...)
	if err != nil {
		return err
	}
	a.Tools = append(a.Tools, tiny.Python)
	a.Resources.CPU = 1 // train.py uses one thread, for bit-identical weights
	a.Timeout = trainTimeout
	return ctx.AddAction(a)
}

// lfAction writes LLaMA-Factory's YAML and DeepSpeed config and runs
// `llamafactory-cli train` in the image on the GPUs.
func lfAction(ctx *engine.Context, s *trainSettings, t llamafactory.Train, inputs []*engine.File, out *engine.File) error {
	name := ctx.Label().Name
	ds, err := ctx.DeclareFile(name+".work/ds_z3_config.json", false)
	if err != nil {
		return err
	}
	if err := ctx.Write(ds, llamafactory.DeepSpeedZeRO3(), false); err != nil {
		return err
	}
	t.DeepSpeed = ds.Path
	y, err := t.YAML()
	if err != nil {
		return fmt.Errorf("llamafactory: %w", err)
	}
	cfg, err := ctx.DeclareFile(name+".work/train.yaml", false)
	if err != nil {
		return err
	}
	if err := ctx.Write(cfg, y, false); err != nil {
		return err
	}
	a := &engine.Action{
		Mnemonic: "LlamaFactoryTrain",
		Args:     []string{"llamafactory-cli", "train", cfg.Path},
		// torchrun over the GPUs lego gives the container.
		Env:       engine.ActionEnv(map[string]string{"FORCE_TORCHRUN": "1", "HF_HUB_ENABLE_HF_TRANSFER": "0"}),
		Inputs:    append(inputs, cfg, ds),
		Outputs:   []*engine.File{out},
		Image:     s.image,
		Network:   !strings.HasPrefix(t.ModelPath, "/") && !strings.HasPrefix(t.ModelPath, engine.OutDir+"/"), // a hub id is downloaded
		Resources: engine.Resources{GPUs: s.gpus},
		Timeout:   trainTimeout,
	}
	return ctx.AddAction(a)
}

// Verifier is verifier: a model trained to judge whether a trajectory
// resolved its task, on rollouts with their resolved status (both
// outcomes). Generative: it writes YES or NO after the judgement marker,
// score = P(yes) from the two logits (llamafactory: SFT on the released
// prompt, package verify; torch_tiny: the byte model). Regressive
// (torch_tiny): a scoring head trained with binary cross-entropy.
type Verifier struct{}

func (Verifier) Kind() string { return "verifier" }

func (Verifier) Attrs() []engine.AttrSpec {
	return append(trainAttrs("2e-5", 5),
		engine.AttrSpec{Name: "trajectories", Type: engine.AttrLabelList, Mandatory: true, Doc: "rollout outputs (or trajectory JSONL files), resolved and not"},
		engine.AttrSpec{Name: "paradigm", Type: engine.AttrString, Default: "generative", Doc: "generative or regressive"},
	)
}

func (Verifier) Analyze(ctx *engine.Context) error {
	s, err := readTrain(ctx)
	if err != nil {
		return err
	}
	paradigm := ctx.Attr("paradigm").(string)
	if err := tiny.CheckParadigm(paradigm); err != nil {
		return fmt.Errorf("attribute paradigm: %w", err)
	}
	if s.trainer == TrainerLlamaFactory && paradigm != "generative" {
		return fmt.Errorf("attribute paradigm: LLaMA-Factory trains the generative verifier (SFT on the judgement); a regressive head needs trainer %s", TrainerTiny)
	}
	ins := ctx.Files("trajectories")
	if len(ins) == 0 {
		return fmt.Errorf("attribute trajectories: no files")
	}
	name := ctx.Label().Name
	out, err := declareCheckpoint(ctx, s)
	if err != nil {
		return err
	}
	var args []string
	for _, f := range ins {
		args = append(args, "--trajectories", f.Path)
	}
	if s.trainer == TrainerTiny {
		return tinyAction(ctx, s, ins, out, append([]string{"--mode", paradigm}, args...)...)
	}
	// The (log, judgement) pairs as SFT data, then LLaMA-Factory.
	data, err := ctx.DeclareFile(name+".work/data", true)
	if err != nil {
		return err
	}
	a, err := legotool.Action(verifierData, nil, ins, []*engine.File{data}, append(args, "--name", name, "--out", data.Path)...)
	if err != nil {
		return err
	}
	if err := ctx.AddAction(a); err != nil {
		return err
	}
	return lfAction(ctx, s, llamafactory.Train{ModelPath: s.base, DatasetDir: data.Path, Datasets: []string{name}, OutputDir: out.Path,
		CutoffLen: s.maxLen, Epochs: float64(s.epochs), LearningRate: s.lr, GlobalBatch: s.batch, GPUs: s.gpus, Seed: int(s.seed)},
		[]*engine.File{data}, out)
}

// RankedConfig is the settings file of a torch_tiny checkpoint used as a
// policy (agent.Ranked).
type RankedConfig struct {
	Kind        string  `json:"kind"` // "ranked"
	Checkpoint  string  `json:"checkpoint"`
	Temperature float64 `json:"temperature"`
}

// VerifierEval is verifier_eval: k rollouts per task with the policy,
// each scored by the verifier; Pass@1, TTS@k (the top-scored rollout's
// resolution) and Best@k (any resolved), per instance and in total.
type VerifierEval struct{}

func (VerifierEval) Kind() string { return "verifier_eval" }

func (VerifierEval) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "policy", Type: engine.AttrLabel, Mandatory: true, Doc: "an sft_checkpoint (torch_tiny: the offline ranked policy), a model_endpoint serving a checkpoint, or a scripted_policy"},
		{Name: "tasks", Type: engine.AttrLabelList, Mandatory: true, Doc: "task_set targets"},
		{Name: "verifier", Type: engine.AttrLabel, Mandatory: true, Doc: "a verifier (torch_tiny), or a model_endpoint serving one (a LLaMA-Factory verifier behind vLLM)"},
		{Name: "k", Type: engine.AttrInt, Default: int64(16), Doc: "rollouts per task"},
		{Name: "temperature", Type: engine.AttrString, Default: "1.0", Doc: "sampling temperature of the offline policy"},
		{Name: "max_turns", Type: engine.AttrInt, Default: int64(100), Doc: "assistant turns before a rollout stops"},
		{Name: "seed", Type: engine.AttrInt, Doc: "sampling seed of the rollouts"},
	}
}

func (VerifierEval) Analyze(ctx *engine.Context) error {
	pl := ctx.Attr("policy").(engine.Label)
	policy := PolicyOf(ctx.Dep(pl))
	if ck := CheckpointOf(ctx.Dep(pl)); ck != nil {
		if ck.Trainer != TrainerTiny {
			return fmt.Errorf("attribute policy: %s is a %s checkpoint: serve it behind an OpenAI-compatible endpoint (vLLM) and name that model_endpoint", pl, ck.Trainer)
		}
		temp, err := strconv.ParseFloat(ctx.Attr("temperature").(string), 64)
		if err != nil || temp < 0 {
			return fmt.Errorf("attribute temperature: %q is not a number ≥ 0", ctx.Attr("temperature"))
		}
		f, err := jsonFile(ctx, ctx.Label().Name+".policy.json", RankedConfig{Kind: "ranked", Checkpoint: ck.Dir.Path, Temperature: temp})
		if err != nil {
			return err
		}
		policy = &PolicyInfo{Name: pl.String(), Config: f, Inputs: []*engine.File{ck.Dir}}
	}
	if policy == nil {
		return fmt.Errorf("attribute policy: %s is a %s, not an sft_checkpoint, model_endpoint or scripted_policy", pl, ctx.Dep(pl).Kind())
	}
	vl := ctx.Attr("verifier").(engine.Label)
	var vargs []string
	var vin *engine.File
	var served *EndpointInfo
	if v := CheckpointOf(ctx.Dep(vl)); v != nil && ctx.Dep(vl).Kind() == "verifier" {
		if v.Trainer != TrainerTiny {
			return fmt.Errorf("attribute verifier: %s is a %s checkpoint: serve it behind an OpenAI-compatible endpoint (vLLM) and name that model_endpoint", vl, v.Trainer)
		}
		vargs, vin = []string{"--verifier", v.Dir.Path}, v.Dir
	} else if served = EndpointOf(ctx.Dep(vl)); served != nil {
		vargs, vin = []string{"--verifier-endpoint", served.Config.Path}, served.Config
	} else {
		return fmt.Errorf("attribute verifier: %s is a %s, not a verifier or a model_endpoint serving one", vl, ctx.Dep(vl).Kind())
	}
	k := ctx.Attr("k").(int64)
	outs, inputs, err := rolloutActions(ctx, policy, "k")
	if err != nil {
		return err
	}
	name := ctx.Label().Name
	plan, err := jsonFile(ctx, name+".work/plan.json", outs)
	if err != nil {
		return err
	}
	out, err := ctx.DeclareFile(name, true)
	if err != nil {
		return err
	}
	a, err := legotool.Action(verifierEval, nil, append(inputs, plan, vin), []*engine.File{out},
		append(vargs, "--plan", plan.Path, "--k", strconv.FormatInt(k, 10), "--name", name, "--out", out.Path)...)
	if err != nil {
		return err
	}
	if served != nil {
		a.Network = true
		if served.APIKeyEnv != "" {
			a.SecretEnv = []string{served.APIKeyEnv}
		}
	}
	ctx.Target.Files = []*engine.File{out}
	return ctx.AddAction(a)
}
