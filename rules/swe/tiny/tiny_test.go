package tiny

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// trainSmall trains a small model on a few rendered conversations.
func trainSmall(t *testing.T, mode string, seed int64, epochs int) string {
	t.Helper()
	cfg, err := ParseBase("tiny-32x2", 64)
	if err != nil {
		t.Fatal(err)
	}
	d := &Data{Ctx: cfg.Ctx}
	for i := range 6 {
		turns := []Turn{
			{Role: "user", Text: "Fix the bug in calc.py number " + strings.Repeat("x", i)},
			{Role: "assistant", Text: "Let me run the tests.\n<tool_call>\n{\"name\":\"execute_bash\"}\n</tool_call>", Train: true},
			{Role: "observation", Text: "FAILED tests/test_calc.py::test_add"},
			{Role: "assistant", Text: "Fixing it.", Train: i%2 == 0},
		}
		text, train := Render(turns)
		if mode == "sft" {
			d.AddLM(text, train)
		} else {
			d.AddJudged(text, i%2 == 0, mode == "generative")
		}
	}
	out := t.TempDir()
	log, _ := os.Create(filepath.Join(out, "log"))
	defer log.Close()
	ck := filepath.Join(out, "ck")
	os.Mkdir(ck, 0o755)
	if err := Train(context.Background(), Job{Model: cfg, Mode: mode, Epochs: epochs, Batch: 4, LR: 3e-3, Seed: seed}, d, ck, log); err != nil {
		b, _ := os.ReadFile(filepath.Join(out, "log"))
		t.Fatalf("%v\n%s", err, b)
	}
	return ck
}

// torchLogits computes, with train.py's own model, the logits at every
// position of x.
func torchLogits(t *testing.T, ck string, x []byte) [][]float64 {
	t.Helper()
	prog := `
import importlib.util, json, sys, torch
spec = importlib.util.spec_from_file_location("train", sys.argv[1]); tr = importlib.util.module_from_spec(spec); spec.loader.exec_module(tr)
cfg = json.load(open(sys.argv[2] + "/config.json"))
m = tr.Tiny({k: cfg[k] for k in ("vocab", "dim", "layers", "heads", "ctx")}); tr.load(m, sys.argv[2])
x = torch.tensor([json.loads(sys.argv[3])])
with torch.no_grad():
    print(json.dumps((m.hidden(x) @ m.out_w + m.out_b)[0].tolist()))
`
	ids, _ := json.Marshal(toInts(x))
	out, err := exec.Command(Python, "-c", prog, "rules/swe/tiny/train.py", ck, string(ids)).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var logits [][]float64
	if err := json.Unmarshal(out, &logits); err != nil {
		t.Fatal(err)
	}
	return logits
}

func toInts(x []byte) []int {
	out := make([]int, len(x))
	for i, b := range x {
		out[i] = int(b)
	}
	return out
}

func TestGoInferenceMatchesTorch(t *testing.T) {
	ck := trainSmall(t, "sft", 1, 2)
	m, err := Load(ck)
	if err != nil {
		t.Fatal(err)
	}
	x := []byte("<|assistant|>\nLet me run the tests.")
	wd, _ := os.Getwd()
	os.Chdir("../../..")
	want := torchLogits(t, ck, x)
	os.Chdir(wd)
	h := m.Hidden(x)
	for i := range x {
		got := m.Logits(h[i])
		for c := range 256 {
			if d := math.Abs(float64(got[c]) - want[i][c]); d > 1e-3 {
				t.Fatalf("position %d byte %d: go %v, torch %v", i, c, got[c], want[i][c])
			}
		}
	}
}

func TestTrainingIsDeterministicAndLearns(t *testing.T) {
	a, b := trainSmall(t, "sft", 7, 8), trainSmall(t, "sft", 7, 8)
	wa, _ := os.ReadFile(filepath.Join(a, WeightsFile))
	wb, _ := os.ReadFile(filepath.Join(b, WeightsFile))
	if !bytes.Equal(wa, wb) {
		t.Fatal("two runs with one seed gave different weights")
	}
	m, err := Load(a)
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := Render([]Turn{{Role: "user", Text: "Fix the bug in calc.py number xx"}})
	ctx = append(ctx, AssistantHead...)
	seen := m.MeanLogProb(ctx, []byte("Let me run the tests."))
	unseen := m.MeanLogProb(ctx, []byte("Qzvj wkx pqq mmzz"))
	if seen <= unseen {
		t.Fatalf("trained text %.3f is not likelier than noise %.3f", seen, unseen)
	}
}

func TestVerifierParadigms(t *testing.T) {
	for _, mode := range Paradigms {
		m, err := Load(trainSmall(t, mode, 3, 30))
		if err != nil {
			t.Fatal(err)
		}
		if m.Mode != mode {
			t.Fatalf("mode %q, want %q", m.Mode, mode)
		}
		yes, _ := Render([]Turn{{Role: "observation", Text: "FAILED tests/test_calc.py::test_add"}, {Role: "assistant", Text: "Fixing it.", Train: true}})
		v := m.Judge(yes)
		if v.Score < 0 || v.Score > 1 || math.IsNaN(v.Score) {
			t.Fatalf("%s: score %v", mode, v.Score)
		}
	}
}

func TestRenderFlagsOnlyTrainedAssistantText(t *testing.T) {
	text, train := Render([]Turn{{Role: "user", Text: "u"}, {Role: "assistant", Text: "ab", Train: true}, {Role: "observation", Text: "o"}, {Role: "assistant", Text: "cd"}})
	var got strings.Builder
	for i, f := range train {
		if f {
			got.WriteByte(text[i])
		}
	}
	if got.String() != "ab\n" {
		t.Fatalf("trained bytes %q, want %q", got.String(), "ab\n")
	}
	long := strings.Repeat("a", 100) + strings.Repeat("z", 400)
	text, _ = Render([]Turn{{Role: "observation", Text: long}})
	if len(text) > maxObserved+40 || !bytes.HasSuffix(bytes.TrimSpace(text), []byte("zzz")) {
		t.Fatalf("observation not clipped to its head and tail: %d bytes", len(text))
	}
}

func TestParseBase(t *testing.T) {
	c, err := ParseBase("tiny-64x2", 131072)
	if err != nil || c.Dim != 64 || c.Layers != 2 || c.Heads != 4 || c.Ctx != MaxCtx {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"Qwen/Qwen3-8B", "tiny-7x2", "tiny-64x0"} {
		if _, err := ParseBase(bad, 1024); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
