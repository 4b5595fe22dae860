package swe_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/swe/llamafactory"
	"github.com/legobuild/lego/starlark"
)

// analyze loads a workspace made of files and analyses label.
func analyze(t *testing.T, files map[string]string, label string) (*engine.Graph, error) {
	t.Helper()
	root := t.TempDir()
	files["WORKSPACE"] = ""
	for name, body := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := starlark.NewLoader(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	lab, err := engine.ParseLabel(label, "")
	if err != nil {
		t.Fatal(err)
	}
	return engine.Analyze(l, []engine.Label{lab})
}

const lfBuild = `
oci_pull(name = "lf", ref = "docker.io/hiyouga/llamafactory:0.9.3", digest = "sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `")
trajectory_filter(name = "resolved", trajectories = ["t.jsonl"], keep = ["resolved"])
masked_dataset(name = "masked", trajectories = ":resolved")
curriculum(name = "cur", dataset = ":masked", bins = [50, 70, 100])
sft_checkpoint(name = "s1", dataset = ":cur", stage = 1, base_model = "Qwen/Qwen3-8B", image = ":lf")
sft_checkpoint(name = "s2", dataset = ":cur", stage = 2, init = ":s1", base_model = "Qwen/Qwen3-8B", image = ":lf", gpus = 4)
verifier(name = "v", trajectories = ["t.jsonl"], trainer = "llamafactory", base_model = "Qwen/Qwen3-8B", image = ":lf")
`

// writes returns the content of the write actions of target, by file name.
func writes(g *engine.Graph, target string) map[string]string {
	out := map[string]string{}
	for _, a := range g.Actions {
		if a.IsWrite && a.Owner.String() == target {
			out[filepath.Base(a.Outputs[0].Path)] = string(a.Content)
		}
	}
	return out
}

// The LLaMA-Factory backend: stage 2 of a curriculum starts from stage
// 1's checkpoint directory, trains on the stage's dataset of the
// curriculum's dataset_info.json, on 4 GPUs in the image; the verifier
// trains on its (log, judgement) data with the release's settings.
func TestLlamaFactoryActions(t *testing.T) {
	g, err := analyze(t, map[string]string{"p/BUILD": lfBuild, "p/t.jsonl": ""}, "//p:s2")
	if err != nil {
		t.Fatal(err)
	}
	var run *engine.Action
	for _, a := range g.Actions {
		if a.Owner.String() == "//p:s2" && a.Mnemonic == "LlamaFactoryTrain" {
			run = a
		}
	}
	if run == nil || run.Image == nil || run.Resources.GPUs != 4 || run.Network || !slices.Equal(run.Args[:2], []string{"llamafactory-cli", "train"}) {
		t.Fatalf("training action %+v", run)
	}
	y := writes(g, "//p:s2")["train.yaml"]
	for _, want := range []string{"model_name_or_path: lego-out/p/s1\n", "dataset: cur_stage2\n", "dataset_dir: lego-out/p/cur\n",
		"output_dir: lego-out/p/s2\n", "gradient_accumulation_steps: 16\n", "turn_mask: true\n", "deepspeed: lego-out/p/s2.work/ds_z3_config.json\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("train.yaml lacks %q:\n%s", want, y)
		}
	}
	if writes(g, "//p:s2")["ds_z3_config.json"] != string(llamafactory.DeepSpeedZeRO3()) {
		t.Error("the DeepSpeed config is not ZeRO-3's")
	}
	g, err = analyze(t, map[string]string{"p/BUILD": lfBuild, "p/t.jsonl": ""}, "//p:v")
	if err != nil {
		t.Fatal(err)
	}
	y = writes(g, "//p:v")["train.yaml"]
	for _, want := range []string{"model_name_or_path: Qwen/Qwen3-8B\n", "dataset: v\n", "learning_rate: 2.0e-5\n", "num_train_epochs: 5.0\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("verifier train.yaml lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(y, "turn_mask") {
		t.Error("the verifier trains with turn_mask")
	}
}

func TestTrainingAttributeErrors(t *testing.T) {
	for _, c := range []struct{ build, want string }{
		{`sft_checkpoint(name = "x", dataset = ":masked", stage = 2, base_model = "tiny-64x2", trainer = "torch_tiny")`, "attribute stage: //p:masked is a masked_dataset, not a curriculum"},
		{`sft_checkpoint(name = "x", dataset = ":cur", stage = 4, base_model = "tiny-64x2", trainer = "torch_tiny")`, "attribute stage: //p:cur has stages 1 to 3; stage 4"},
		{`sft_checkpoint(name = "x", dataset = ":masked", base_model = "Qwen/Qwen3-8B", trainer = "torch_tiny")`, "attribute base_model:"},
		{`sft_checkpoint(name = "x", dataset = ":masked", base_model = "Qwen/Qwen3-8B")`, "attribute image: trainer llamafactory runs in an image"},
		{`sft_checkpoint(name = "x", dataset = ":masked", base_model = "tiny-64x2", trainer = "torch_tiny", lr = "fast")`, "attribute lr:"},
		{`sft_checkpoint(name = "x", dataset = ":masked", base_model = "tiny-64x2", trainer = "torch_tiny", init = ":s1")`, "attribute init: //p:s1 is a llamafactory checkpoint of Qwen/Qwen3-8B"},
		{`verifier(name = "x", trajectories = ["t.jsonl"], base_model = "Qwen/Qwen3-8B", image = ":lf", paradigm = "regressive")`, "attribute paradigm: LLaMA-Factory trains the generative verifier"},
		{`verifier_eval(name = "x", policy = ":s1", tasks = [], verifier = ":v")`, "attribute policy: //p:s1 is a llamafactory checkpoint: serve it"},
	} {
		_, err := analyze(t, map[string]string{"p/BUILD": lfBuild + c.build, "p/t.jsonl": ""}, "//p:x")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "p/BUILD:") {
			t.Errorf("%s:\n got %v\nwant %q with the file and line", c.build, err, c.want)
		}
	}
}
