package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// This machine has no NVIDIA driver: the binary, which links go-nvml,
// starts; a build needing a GPU fails before running anything and names
// --gpu_fallback=cpu; with it the action runs without devices, keyed apart
// from GPU runs.
func TestGPUActionWithoutGPU(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Fatal("this test expects a machine without an NVIDIA driver")
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"BUILD": `
genrule(name = "prep", outs = ["prep.txt"], cmd = "echo prep > $@")
genrule(
    name = "train",
    srcs = [":prep"],
    outs = ["ckpt.txt"],
    resources = {"gpus": "1", "gpu_memory": "40GiB"},
    cmd = "echo devices=[$${CUDA_VISIBLE_DEVICES:-}] > $@",
)
`,
	})
	cache := t.TempDir()
	r := lego(t, root, "build", "//:train", "--cache_dir="+cache)
	if r.code == 0 || !strings.Contains(r.stderr, "//:train needs 1 GPU(s) but this machine has none") ||
		!strings.Contains(r.stderr, "--gpu_fallback=cpu") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "lego-out/prep.txt")); err == nil {
		t.Error("the build ran actions before failing")
	}
	r = mustLego(t, root, "build", "//:train", "--cache_dir="+cache, "--gpu_fallback=cpu")
	if got := mustRead(t, filepath.Join(root, "lego-out/ckpt.txt")); got != "devices=[]\n" {
		t.Errorf("ckpt.txt = %q", got)
	}
	if _, ran, _ := counts(t, r); ran != 2 {
		t.Errorf("executed %d actions, want 2", ran)
	}
	// A non-GPU build never touches NVML.
	mustLego(t, root, "build", "//:prep", "--cache_dir="+cache)
}
