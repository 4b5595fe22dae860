package llamafactory

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func paperRun() Train {
	return Train{
		ModelPath:  "Qwen/Qwen3-8B",
		DatasetDir: "data",
		Datasets:   []string{"swe_lego_real_data_resolved_trajectories", "swe_lego_synthetic_data_resolved_trajectories"},
		OutputDir:  "saves/SWE-Lego-Qwen3-8B",
		DeepSpeed:  "ds_z3_config.json",
		TurnMask:   true,
		Seed:       42,
	}
}

func mustYAML(t *testing.T, tr Train) []byte {
	t.Helper()
	b, err := tr.YAML()
	if err != nil {
		t.Fatalf("YAML: %v", err)
	}
	return b
}

// The defaults are REFERENCE.md's SFT facts; every key is checked, and
// none is left unchecked.
func TestDefaultsReproducePaper(t *testing.T) {
	got := yamlMap(t, mustYAML(t, paperRun()))
	want := map[string]any{
		// REFERENCE.md, "SFT"
		"stage":                       "sft",
		"do_train":                    true,
		"finetuning_type":             "full",
		"deepspeed":                   "ds_z3_config.json",
		"template":                    "qwen3_nothink",
		"cutoff_len":                  int64(131072),
		"rope_scaling":                "yarn",
		"per_device_train_batch_size": int64(1),
		"gradient_accumulation_steps": int64(8),
		"learning_rate":               1.0e-4,
		"num_train_epochs":            4.0,
		"lr_scheduler_type":           "cosine",
		"warmup_ratio":                0.1,
		"weight_decay":                0.01,
		"max_grad_norm":               1.0,
		"bf16":                        true,
		"flash_attn":                  "fa2",
		"enable_liger_kernel":         true,
		"save_strategy":               "epoch",
		"save_only_model":             true,
		// REFERENCE.md, "Error masking"
		"turn_mask": true,
		// the run's own settings
		"model_name_or_path": "Qwen/Qwen3-8B",
		"dataset":            "swe_lego_real_data_resolved_trajectories,swe_lego_synthetic_data_resolved_trajectories",
		"dataset_dir":        "data",
		"output_dir":         "saves/SWE-Lego-Qwen3-8B",
		"seed":               int64(42),
		// plumbing
		"overwrite_output_dir":      true,
		"overwrite_cache":           true,
		"logging_steps":             int64(1),
		"report_to":                 "none",
		"preprocessing_num_workers": int64(16),
		"dataloader_num_workers":    int64(4),
		"plot_loss":                 false,
		"ddp_timeout":               int64(180000000),
		"use_unsloth_gc":            true,
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if g, ok := got[k]; !ok {
				t.Errorf("missing %s (want %#v)", k, v)
			} else if g != v {
				t.Errorf("%s = %#v, want %#v", k, g, v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected key %s = %#v", k, v)
			}
		}
	}
	// Keys lists exactly what YAML writes, in order.
	keys, err := paperRun().Keys()
	if err != nil {
		t.Fatal(err)
	}
	kvs, _ := parseYAML(mustYAML(t, paperRun()))
	for i, kv := range kvs {
		if i >= len(keys) || keys[i] != kv.key {
			t.Fatalf("Keys()[%d] disagrees with YAML key %q", i, kv.key)
		}
	}
	if len(keys) != len(kvs) {
		t.Fatalf("Keys() has %d keys, YAML %d", len(keys), len(kvs))
	}
}

func TestTurnMaskOnlyWhenAsked(t *testing.T) {
	r := paperRun()
	r.TurnMask = false
	if _, ok := yamlMap(t, mustYAML(t, r))["turn_mask"]; ok {
		t.Fatal("turn_mask written without TurnMask (upstream LLaMA-Factory would refuse the key)")
	}
}

// Every key written is a field of the SWE-Lego fork's argument classes or
// of the transformers TrainingArguments it extends.
func TestKeysDocumented(t *testing.T) {
	fork := keyFile(t, "documented_keys.txt")
	upstream := keyFile(t, "documented_keys_upstream.txt")
	keys, err := paperRun().Keys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		src, ok := fork[k]
		if !ok {
			t.Errorf("key %q is not documented by the SWE-Lego fork of LLaMA-Factory or transformers 4.5x", k)
			continue
		}
		t.Logf("%-28s %s", k, src)
		_, up := upstream[k]
		switch {
		case k == "turn_mask":
			if !strings.Contains(src, "LLaMA-Factory-0.9.4.dev0/src/llamafactory/hparams/data_args.py") {
				t.Errorf("turn_mask documented by %s, want the fork's data_args.py", src)
			}
			if up {
				t.Errorf("turn_mask is in upstream LLaMA-Factory now: update the package comment")
			}
		case !up:
			t.Errorf("key %q is not accepted by upstream LLaMA-Factory + transformers main", k)
		}
	}
}

// Enumerated values are among those the sources list.
func TestValuesDocumented(t *testing.T) {
	vals := valueFile(t)
	got := yamlMap(t, mustYAML(t, paperRun()))
	for _, k := range []string{"stage", "finetuning_type", "rope_scaling", "flash_attn", "template", "save_strategy", "lr_scheduler_type"} {
		v, _ := got[k].(string)
		if !contains(vals[k], v) {
			t.Errorf("%s = %q, not among the documented %v", k, v, vals[k])
		}
	}
	if !reflect.DeepEqual(Stages, vals["stage"]) {
		t.Errorf("Stages = %v, documented %v", Stages, vals["stage"])
	}
}

// Agreement with the authors' released configs: every key both set has
// the same value, except the run's own paths and the listed plumbing.
func TestMatchesAuthorsConfigs(t *testing.T) {
	for _, c := range []struct {
		file, model string
		lr          float64
	}{
		{"swe_lego_qwen3_8b.txt", "Qwen/Qwen3-8B", 0},
		{"swe_lego_qwen3_32b.txt", "Qwen/Qwen3-32B", 5e-5},
	} {
		_, theirs := pairFile(t, c.file)
		r := paperRun()
		r.ModelPath = c.model
		r.LearningRate = c.lr
		ours := yamlMap(t, mustYAML(t, r))
		differ := map[string]bool{
			"deepspeed": true, "output_dir": true, // paths of the run
			"report_to": true, // wandb: needs an account and network
			"plot_loss": true, // matplotlib figure, not a checkpoint
		}
		onlyTheirs := map[string]bool{
			"trust_remote_code":      true, // Qwen3 needs no remote code
			"max_samples":            true, // 1000000: all samples, as unset
			"resume_from_checkpoint": true, // null, as unset
		}
		onlyOurs := map[string]bool{"dataset_dir": true, "seed": true}
		for k, tv := range theirs {
			ov, ok := ours[k]
			switch {
			case !ok && !onlyTheirs[k]:
				t.Errorf("%s: authors set %s = %s; lego does not", c.file, k, tv)
			case ok && onlyTheirs[k]:
				t.Errorf("%s: %s listed as authors-only but lego sets it", c.file, k)
			case ok && !differ[k]:
				ob, _ := json.Marshal(ov)
				var a, b any
				json.Unmarshal([]byte(tv), &a)
				json.Unmarshal(ob, &b)
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s: %s = %s, authors %s", c.file, k, ob, tv)
				}
			}
		}
		for k := range ours {
			if _, ok := theirs[k]; !ok && !onlyOurs[k] {
				t.Errorf("%s: lego sets %s, the authors do not", c.file, k)
			}
		}
	}
}

func TestGradientAccumulation(t *testing.T) {
	for _, c := range []struct{ gpus, per, global, want int }{
		{0, 0, 0, 8}, {8, 1, 64, 8}, {4, 1, 64, 16}, {2, 1, 64, 32}, {1, 1, 64, 64},
		{16, 1, 64, 4}, {64, 1, 64, 1}, {8, 2, 64, 4}, {4, 2, 0, 8}, {6, 1, 48, 8}, {8, 1, 128, 16},
	} {
		r := paperRun()
		r.GPUs, r.PerDeviceBatch, r.GlobalBatch = c.gpus, c.per, c.global
		got, err := r.GradientAccumulation()
		if err != nil || got != c.want {
			t.Errorf("GPUs %d × per-device %d, global %d: %d, %v; want %d", c.gpus, c.per, c.global, got, err, c.want)
			continue
		}
		m := yamlMap(t, mustYAML(t, r))
		if m["gradient_accumulation_steps"] != int64(c.want) {
			t.Errorf("GPUs %d: YAML gradient_accumulation_steps = %v, want %d", c.gpus, m["gradient_accumulation_steps"], c.want)
		}
		per := int64(c.per)
		if per == 0 {
			per = 1
		}
		if m["per_device_train_batch_size"] != per {
			t.Errorf("GPUs %d: per_device_train_batch_size = %v", c.gpus, m["per_device_train_batch_size"])
		}
	}
	for _, c := range []struct{ gpus, per, global int }{
		{3, 1, 64}, {128, 1, 64}, {8, 3, 64}, {7, 0, 0}, {5, 1, 64},
	} {
		r := paperRun()
		r.GPUs, r.PerDeviceBatch, r.GlobalBatch = c.gpus, c.per, c.global
		if _, err := r.YAML(); err == nil || !strings.Contains(err.Error(), "GlobalBatch") {
			t.Errorf("GPUs %d × per-device %d, global %d: err = %v, want one naming GlobalBatch", c.gpus, c.per, c.global, err)
		}
	}
}

func TestLearningRate32B(t *testing.T) {
	r := paperRun()
	r.LearningRate = 5e-5
	b := mustYAML(t, r)
	if !bytes.Contains(b, []byte("\nlearning_rate: 5.0e-5\n")) {
		t.Errorf("32B learning rate not written as 5.0e-5:\n%s", b)
	}
	if got := yamlMap(t, b)["learning_rate"]; got != 5e-5 {
		t.Errorf("learning_rate reads back as %#v", got)
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(*Train)
	}{
		{"ModelPath", func(r *Train) { r.ModelPath = "" }},
		{"ModelPath", func(r *Train) { r.ModelPath = "  " }},
		{"ModelPath", func(r *Train) { r.ModelPath = "a\nb: c" }},
		{"ModelPath", func(r *Train) { r.ModelPath = "${oc.env:HOME}" }},
		{"ModelPath", func(r *Train) { r.ModelPath = "bad\xffutf8" }},
		{"DatasetDir", func(r *Train) { r.DatasetDir = "" }},
		{"OutputDir", func(r *Train) { r.OutputDir = "" }},
		{"DeepSpeed", func(r *Train) { r.DeepSpeed = "" }},
		{"Datasets", func(r *Train) { r.Datasets = nil }},
		{"Datasets[0]", func(r *Train) { r.Datasets = []string{""} }},
		{"Datasets[1]", func(r *Train) { r.Datasets = []string{"a", "b,c"} }},
		{"Datasets[0]", func(r *Train) { r.Datasets = []string{" a"} }},
		{"Datasets[1]", func(r *Train) { r.Datasets = []string{"a", "a"} }},
		{"Template", func(r *Train) { r.Template = "qwen3 nothink" }},
		{"CutoffLen", func(r *Train) { r.CutoffLen = -1 }},
		{"Epochs", func(r *Train) { r.Epochs = -4 }},
		{"Epochs", func(r *Train) { r.Epochs = math.NaN() }},
		{"Epochs", func(r *Train) { r.Epochs = math.Inf(1) }},
		{"LearningRate", func(r *Train) { r.LearningRate = -1e-4 }},
		{"LearningRate", func(r *Train) { r.LearningRate = math.NaN() }},
		{"LearningRate", func(r *Train) { r.LearningRate = 2 }},
		{"GlobalBatch", func(r *Train) { r.GlobalBatch = -64 }},
		{"GPUs", func(r *Train) { r.GPUs = -8 }},
		{"PerDeviceBatch", func(r *Train) { r.PerDeviceBatch = -1 }},
		{"Seed", func(r *Train) { r.Seed = -1 }},
		{"Seed", func(r *Train) { r.Seed = 1 << 33 }},
		{"Stage", func(r *Train) { r.Stage = "grpo" }},
		{"TurnMask", func(r *Train) { r.Stage = "dpo" }},
		{"LoggingSteps", func(r *Train) { r.LoggingSteps = -1 }},
		{"PreprocessingWorkers", func(r *Train) { r.PreprocessingWorkers = -2 }},
		{"DataloaderWorkers", func(r *Train) { r.DataloaderWorkers = 1 << 20 }},
	} {
		r := paperRun()
		c.edit(&r)
		b, err := r.YAML()
		if err == nil {
			t.Errorf("%s: no error; YAML:\n%s", c.field, b)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q does not name the field", c.field, err)
		}
		if _, err2 := r.GradientAccumulation(); err2 == nil {
			t.Errorf("%s: GradientAccumulation accepted an invalid run", c.field)
		}
	}
}

// Resolved does not alias the caller's slice.
func TestResolvedCopies(t *testing.T) {
	r := paperRun()
	res, err := r.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	res.Datasets[0] = "changed"
	if r.Datasets[0] == "changed" {
		t.Fatal("Resolved shares Datasets with its receiver")
	}
}

func TestYAMLFloat(t *testing.T) {
	for f, want := range map[float64]string{
		1e-4: "1.0e-4", 5e-5: "5.0e-5", 2e-5: "2.0e-5", 1.5e-5: "1.5e-5", 4: "4.0", 1: "1.0",
		0.1: "0.1", 0.01: "0.01", 2.5: "2.5", 0.001: "0.001", 1e7: "1.0e+7", 0: "0.0", 3e-10: "3.0e-10",
	} {
		got := yamlFloat(f)
		if got != want {
			t.Errorf("yamlFloat(%v) = %q, want %q", f, got, want)
		}
		back, err := yamlScalar(got)
		if err != nil || back != f {
			t.Errorf("yamlFloat(%v) = %q reads back as %#v, %v", f, got, back, err)
		}
	}
}

// Strings that YAML could read as something else are quoted and come back
// unchanged.
func TestStringsRoundTrip(t *testing.T) {
	for _, s := range []string{
		"Qwen/Qwen3-8B", "/cas/ab12/checkpoint-final", "./stage1", "../x", "yes", "No", "null", "~",
		"123", "1.0e-4", "0x10", "a: b", "#x", "x #y", `q"uote`, `back\slash`, "with space", "-dash",
		"@at", "ünïcode/模型", "[list]", "{map}", "*ref", "&anchor", "!tag", "%pct", "1:20", ".inf", "",
	} {
		got, err := yamlScalar(yamlString(s))
		if err != nil || got != s {
			t.Errorf("yamlString(%q) = %s reads back as %#v, %v", s, yamlString(s), got, err)
		}
	}
	r := paperRun()
	r.ModelPath = "/models/Qwen3 8B: yes"
	r.OutputDir = "007"
	m := yamlMap(t, mustYAML(t, r))
	if m["model_name_or_path"] != r.ModelPath || m["output_dir"] != "007" {
		t.Errorf("paths read back as %#v, %#v", m["model_name_or_path"], m["output_dir"])
	}
}

func TestDeterministic(t *testing.T) {
	a, b := mustYAML(t, paperRun()), mustYAML(t, paperRun())
	if !bytes.Equal(a, b) {
		t.Fatal("YAML differs between calls")
	}
	if !bytes.Equal(DeepSpeedZeRO3(), DeepSpeedZeRO3()) {
		t.Fatal("DeepSpeedZeRO3 differs between calls")
	}
}

// PyYAML (what LLaMA-Factory reads its YAML with; Debian's python3-yaml,
// which scripts/setup.sh installs) reads the file as our reader does.
func TestPyYAMLAgrees(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import yaml").CombinedOutput(); err != nil {
		t.Fatalf("%s has no yaml module (scripts/setup.sh installs python3-yaml): %v %s", py, err, out)
	}
	r := paperRun()
	r.ModelPath = `/models/"Qwen3" 8B: yes # not a comment`
	r.LearningRate = 5e-5
	b := mustYAML(t, r)
	cmd := exec.Command(py, "-c", `
import sys, json, yaml
d = yaml.safe_load(sys.stdin)
print(json.dumps({k: [type(v).__name__, v] for k, v in d.items()}))`)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML: %v", err)
	}
	var got map[string][2]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	kvs, _ := parseYAML(b)
	if len(got) != len(kvs) {
		t.Errorf("PyYAML reads %d keys, we %d", len(got), len(kvs))
	}
	pyType := func(v any) string {
		switch v.(type) {
		case bool:
			return "bool"
		case int64:
			return "int"
		case float64:
			return "float"
		case string:
			return "str"
		}
		return "NoneType"
	}
	for _, kv := range kvs {
		g, ok := got[kv.key]
		if !ok {
			t.Errorf("PyYAML lacks %s", kv.key)
			continue
		}
		if g[0] != pyType(kv.val) {
			t.Errorf("%s: PyYAML type %v, ours %s", kv.key, g[0], pyType(kv.val))
		}
		ours, _ := json.Marshal(kv.val)
		theirs, _ := json.Marshal(g[1])
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s: PyYAML %s, ours %s", kv.key, theirs, ours)
		}
	}
}

func TestYAMLLayout(t *testing.T) {
	b := mustYAML(t, paperRun())
	var sections []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "### ") {
			sections = append(sections, strings.TrimPrefix(l, "### "))
		}
	}
	if want := []string{"model", "method", "dataset", "output", "train"}; !reflect.DeepEqual(sections, want) {
		t.Errorf("sections %v, want %v", sections, want)
	}
	keys, _ := paperRun().Keys()
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			t.Errorf("key %s written twice", sorted[i])
		}
	}
}

// GradientAccumulation is GlobalBatch / (GPUs × PerDeviceBatch), defaults
// applied; an error when that does not divide exactly.
func (t Train) GradientAccumulation() (int, error) {
	r, err := t.Resolved()
	if err != nil {
		return 0, err
	}
	return r.GlobalBatch / (r.GPUs * r.PerDeviceBatch), nil
}

// Keys lists the keys YAML writes for t, in order.
func (t Train) Keys() ([]string, error) {
	r, err := t.Resolved()
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, s := range r.sections() {
		for _, e := range s.entries {
			keys = append(keys, e.key)
		}
	}
	return keys, nil
}
