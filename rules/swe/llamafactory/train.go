// Package llamafactory writes what a LLaMA-Factory full-parameter SFT run
// reads: the training YAML (with the SWE-Lego paper's hyper-parameters as
// defaults), the DeepSpeed ZeRO-3 configuration it names, and a check of
// the dataset_info.json that registers the training data.
//
// The trainer targeted is the SWE-Lego fork of LLaMA-Factory
// (LLaMA-Factory-0.9.4.dev0 in the SWE-Lego/SWE-Lego repository, run with
// transformers 4.49–4.55), whose DataArguments adds turn_mask. Every key
// written is one that fork's argument parser accepts; LLaMA-Factory
// refuses unknown keys unless ALLOW_EXTRA_ARGS is set. Without TurnMask
// the YAML also holds only keys of upstream LLaMA-Factory.
//
// The package has no engine import: the sft_checkpoint rule calls it.
package llamafactory

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Defaults: the SWE-Lego paper's SFT recipe (Qwen3-8B; callers pass a
// learning rate of 5e-5 for Qwen3-32B).
const (
	DefaultTemplate     = "qwen3_nothink"
	DefaultCutoffLen    = 131072
	DefaultEpochs       = 4.0
	DefaultLearningRate = 1e-4
	DefaultGlobalBatch  = 64
	DefaultGPUs         = 8
	DefaultPerDevice    = 1
	DefaultStage        = "sft"

	DefaultLoggingSteps         = 1
	DefaultPreprocessingWorkers = 16
	DefaultDataloaderWorkers    = 4
)

// Fixed hyper-parameters of the recipe (not fields of Train).
const (
	RopeScaling     = "yarn"
	FlashAttn       = "fa2"
	LRScheduler     = "cosine"
	WarmupRatio     = 0.1
	WeightDecay     = 0.01
	MaxGradNorm     = 1.0
	SaveStrategy    = "epoch"
	FinetuningType  = "full"
	ReportTo        = "none"
	DDPTimeout      = 180000000        // seconds, as the authors' configs set it: the 128k-token preprocessing outlasts NCCL's default
	maxSeed         = int64(1<<32 - 1) // numpy's seed range, which transformers' set_seed uses
	maxGradAccum    = 1 << 20
	maxCutoffLen    = 1 << 24
	maxWorkerCount  = 1024
	maxLoggingSteps = 1 << 30
)

// Stages lists the training stages LLaMA-Factory's FinetuningArguments.stage
// accepts.
var Stages = []string{"pt", "sft", "rm", "ppo", "dpo", "kto"}

// Train is one full-parameter SFT run of LLaMA-Factory.
type Train struct {
	ModelPath      string   // model_name_or_path: hub id or directory (base model, or the previous curriculum stage's checkpoint)
	DatasetDir     string   // dataset_dir: directory holding dataset_info.json
	Datasets       []string // names registered in dataset_info.json
	OutputDir      string
	Template       string  // "" = qwen3_nothink
	CutoffLen      int     // 0 = 131072
	Epochs         float64 // 0 = 4
	LearningRate   float64 // 0 = 1e-4 (callers pass 5e-5 for 32B)
	GlobalBatch    int     // 0 = 64
	GPUs           int     // 0 = 8
	PerDeviceBatch int     // 0 = 1
	TurnMask       bool    // SWE-Lego fork's per-assistant-turn loss mask (turn_mask: true)
	DeepSpeed      string  // path of the ZeRO-3 config the YAML names
	Seed           int
	Stage          string // "" = sft

	// Plumbing with defaults; none changes what is learnt.
	LoggingSteps         int // 0 = 1
	PreprocessingWorkers int // preprocessing_num_workers; 0 = 16
	DataloaderWorkers    int // dataloader_num_workers; 0 = 4
}

// Resolved returns t with every zero field set to its default, or an error
// naming the first invalid field.
func (t Train) Resolved() (Train, error) {
	r := t
	r.Datasets = append([]string(nil), t.Datasets...)
	orDefault(&r.Template, DefaultTemplate)
	orDefault(&r.CutoffLen, DefaultCutoffLen)
	orDefault(&r.Epochs, DefaultEpochs)
	orDefault(&r.LearningRate, DefaultLearningRate)
	orDefault(&r.GlobalBatch, DefaultGlobalBatch)
	orDefault(&r.GPUs, DefaultGPUs)
	orDefault(&r.PerDeviceBatch, DefaultPerDevice)
	orDefault(&r.Stage, DefaultStage)
	orDefault(&r.LoggingSteps, DefaultLoggingSteps)
	orDefault(&r.PreprocessingWorkers, DefaultPreprocessingWorkers)
	orDefault(&r.DataloaderWorkers, DefaultDataloaderWorkers)
	if err := r.check(); err != nil {
		return Train{}, err
	}
	return r, nil
}

// orDefault sets a zero field to its default.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func (r Train) check() error {
	for _, f := range []struct{ name, v string }{
		{"ModelPath", r.ModelPath},
		{"DatasetDir", r.DatasetDir},
		{"OutputDir", r.OutputDir},
		{"DeepSpeed", r.DeepSpeed},
		{"Template", r.Template},
	} {
		if strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("llamafactory: %s is required", f.name)
		}
		if err := checkString(f.v); err != nil {
			return fmt.Errorf("llamafactory: %s %q: %v", f.name, f.v, err)
		}
	}
	if !isToken(r.Template) {
		return fmt.Errorf("llamafactory: Template %q is not a template name (letters, digits, '_', '-', '.')", r.Template)
	}
	if len(r.Datasets) == 0 {
		return fmt.Errorf("llamafactory: Datasets is empty: name at least one dataset of dataset_info.json")
	}
	seen := map[string]bool{}
	for i, d := range r.Datasets {
		switch {
		case d == "":
			return fmt.Errorf("llamafactory: Datasets[%d] is empty", i)
		case strings.TrimSpace(d) != d || strings.ContainsRune(d, ','):
			// LLaMA-Factory splits the dataset key on "," and strips each name.
			return fmt.Errorf("llamafactory: Datasets[%d] %q: a dataset name has no ',' and no surrounding spaces", i, d)
		case seen[d]:
			return fmt.Errorf("llamafactory: Datasets[%d] %q is named twice", i, d)
		}
		if err := checkString(d); err != nil {
			return fmt.Errorf("llamafactory: Datasets[%d] %q: %v", i, d, err)
		}
		seen[d] = true
	}
	if !contains(Stages, r.Stage) {
		return fmt.Errorf("llamafactory: Stage %q is not one of %s", r.Stage, strings.Join(Stages, ", "))
	}
	if r.TurnMask && r.Stage != "sft" {
		return fmt.Errorf("llamafactory: TurnMask needs Stage sft (the fork applies turn_mask in its supervised processor only), not %q", r.Stage)
	}
	for _, f := range []struct {
		name   string
		v, max int
	}{
		{"CutoffLen", r.CutoffLen, maxCutoffLen},
		{"GlobalBatch", r.GlobalBatch, math.MaxInt32},
		{"GPUs", r.GPUs, 1 << 16},
		{"PerDeviceBatch", r.PerDeviceBatch, 1 << 16},
		{"LoggingSteps", r.LoggingSteps, maxLoggingSteps},
		{"PreprocessingWorkers", r.PreprocessingWorkers, maxWorkerCount},
		{"DataloaderWorkers", r.DataloaderWorkers, maxWorkerCount},
	} {
		if f.v < 1 || f.v > f.max {
			return fmt.Errorf("llamafactory: %s = %d, want 1..%d (0 = default)", f.name, f.v, f.max)
		}
	}
	if r.Seed < 0 || int64(r.Seed) > maxSeed {
		return fmt.Errorf("llamafactory: Seed = %d, want 0..%d", r.Seed, maxSeed)
	}
	if !(r.Epochs > 0) || math.IsInf(r.Epochs, 0) || r.Epochs > 1e6 {
		return fmt.Errorf("llamafactory: Epochs = %v, want a positive finite number (0 = %v)", r.Epochs, DefaultEpochs)
	}
	if !(r.LearningRate > 0) || r.LearningRate >= 1 {
		return fmt.Errorf("llamafactory: LearningRate = %v, want 0 < lr < 1 (0 = %v)", r.LearningRate, DefaultLearningRate)
	}
	per := r.GPUs * r.PerDeviceBatch
	if r.GlobalBatch%per != 0 {
		return fmt.Errorf("llamafactory: GlobalBatch %d is not a multiple of GPUs × PerDeviceBatch = %d × %d = %d",
			r.GlobalBatch, r.GPUs, r.PerDeviceBatch, per)
	}
	if r.GlobalBatch/per > maxGradAccum {
		return fmt.Errorf("llamafactory: gradient_accumulation_steps %d is too large", r.GlobalBatch/per)
	}
	return nil
}

// YAML returns the training configuration `llamafactory-cli train` reads:
// a fixed key order, grouped as LLaMA-Factory's examples group them.
func (t Train) YAML() ([]byte, error) {
	r, err := t.Resolved()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# LLaMA-Factory full-parameter SFT, written by lego (rules/swe/llamafactory).\n")
	for i, s := range r.sections() {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "### %s\n", s.name)
		for _, e := range s.entries {
			b.WriteString(e.key)
			b.WriteString(": ")
			b.WriteString(e.val)
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

type entry struct{ key, val string }

type section struct {
	name    string
	entries []entry
}

// sections lays out a resolved, checked run.
func (r Train) sections() []section {
	dataset := []entry{
		{"dataset", yamlString(strings.Join(r.Datasets, ","))},
		{"dataset_dir", yamlString(r.DatasetDir)},
		{"template", yamlString(r.Template)},
		{"cutoff_len", yamlInt(r.CutoffLen)},
	}
	if r.TurnMask {
		dataset = append(dataset, entry{"turn_mask", "true"})
	}
	dataset = append(dataset,
		entry{"overwrite_cache", "true"},
		entry{"preprocessing_num_workers", yamlInt(r.PreprocessingWorkers)},
		entry{"dataloader_num_workers", yamlInt(r.DataloaderWorkers)},
	)
	return []section{
		{"model", []entry{
			{"model_name_or_path", yamlString(r.ModelPath)},
			{"rope_scaling", RopeScaling},
			{"flash_attn", FlashAttn},
			{"enable_liger_kernel", "true"},
			{"use_unsloth_gc", "true"},
		}},
		{"method", []entry{
			{"stage", yamlString(r.Stage)},
			{"do_train", "true"},
			{"finetuning_type", FinetuningType},
			{"deepspeed", yamlString(r.DeepSpeed)},
		}},
		{"dataset", dataset},
		{"output", []entry{
			{"output_dir", yamlString(r.OutputDir)},
			{"overwrite_output_dir", "true"},
			{"logging_steps", yamlInt(r.LoggingSteps)},
			{"save_strategy", SaveStrategy},
			{"save_only_model", "true"},
			{"plot_loss", "false"},
			{"report_to", ReportTo},
		}},
		{"train", []entry{
			{"per_device_train_batch_size", yamlInt(r.PerDeviceBatch)},
			{"gradient_accumulation_steps", yamlInt(r.GlobalBatch / (r.GPUs * r.PerDeviceBatch))},
			{"learning_rate", yamlFloat(r.LearningRate)},
			{"num_train_epochs", yamlFloat(r.Epochs)},
			{"lr_scheduler_type", LRScheduler},
			{"warmup_ratio", yamlFloat(WarmupRatio)},
			{"weight_decay", yamlFloat(WeightDecay)},
			{"max_grad_norm", yamlFloat(MaxGradNorm)},
			{"bf16", "true"},
			{"ddp_timeout", yamlInt(DDPTimeout)},
			{"seed", yamlInt(r.Seed)},
		}},
	}
}

// checkString refuses what a one-line YAML scalar, or OmegaConf (which
// LLaMA-Factory loads the file with), would not carry through unchanged.
func checkString(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0x85 || c == 0x2028 || c == 0x2029 || c == 0xfeff {
			return fmt.Errorf("has control character %U", c)
		}
	}
	if strings.Contains(s, "${") {
		return fmt.Errorf("has \"${\", which OmegaConf reads as an interpolation")
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// yaml11Words are the plain scalars YAML 1.1 (PyYAML, OmegaConf) resolves
// to booleans or null.
var yaml11Words = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true, "~": true,
}

// yamlString writes s plain when it cannot be read as anything but this
// string, double-quoted otherwise.
func yamlString(s string) string {
	if plainSafe(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// plainSafe: starts with a letter, '/' or "./"/"../", holds only
// [A-Za-z0-9_./,+@=-], does not end in a separator YAML might treat
// specially, and is no YAML 1.1 boolean or null word.
func plainSafe(s string) bool {
	if s == "" || yaml11Words[strings.ToLower(s)] {
		return false
	}
	c0 := s[0]
	if !(c0 >= 'a' && c0 <= 'z' || c0 >= 'A' && c0 <= 'Z' || c0 == '/' ||
		strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '/' || c == ',' || c == '+' || c == '@' || c == '=' || c == '-') {
			return false
		}
	}
	return true
}

func yamlInt(n int) string { return strconv.Itoa(n) }

// yamlFloat writes f so that YAML 1.1 resolves it to a float: a '.' in the
// mantissa and a signed exponent ("1.0e-4", "4.0", "0.01"). A float written
// "1e-4" would reach transformers as a string.
func yamlFloat(f float64) string {
	a := math.Abs(f)
	if f != 0 && (a < 1e-3 || a >= 1e7) {
		s := strconv.FormatFloat(f, 'e', -1, 64) // "1e-04", "5.5e+07"
		mant, exp, _ := strings.Cut(s, "e")
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		sign := exp[:1]
		digits := strings.TrimLeft(exp[1:], "0")
		if digits == "" {
			digits = "0"
		}
		return mant + "e" + sign + digits
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
