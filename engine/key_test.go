package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// An action in an image is keyed by the image's manifest digest and its
// network setting, not by the host's tools.
func TestImageActionKey(t *testing.T) {
	store, err := cas.Open(filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(hexByte string, size int64) *repb.Digest {
		b, _ := json.Marshal(ImageManifest{Digest: "sha256:" + strings.Repeat(hexByte, 64), Size: size})
		d, err := store.Put(b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	imgA, imgB := manifest("a", 321), manifest("b", 321)
	key := func(img *repb.Digest, network bool) *keyed {
		t.Helper()
		man := &File{Path: "lego-out/p/img.manifest.json"}
		a := &Action{
			Args: []string{"/bin/bash", "-c", "python3 -V > lego-out/p/o"}, Env: map[string]string{"X": "1"},
			Inputs: []*File{man}, Outputs: []*File{{Path: "lego-out/p/o"}}, Tools: []string{"/bin/bash"},
			Image: man, Network: network,
		}
		inputs := func(f *File) (*artifact, error) { return &artifact{digest: img}, nil }
		tool := func(p string) (*repb.Digest, error) {
			t.Errorf("host tool %s digested for an action in an image", p)
			return cas.DigestOf(nil), nil
		}
		k, err := computeKey(a, inputs, tool, store.Get, "", "linux-test")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := key(imgA, false)
	props := map[string]string{}
	for _, p := range k.action.Platform.GetProperties() {
		props[p.Name] = p.Value
	}
	if props[executors.PropImage] != "sha256:"+strings.Repeat("a", 64) || props[executors.PropImageSize] != "321" {
		t.Errorf("platform %v lacks the image", props)
	}
	if _, ok := props[executors.PropNetwork]; ok {
		t.Errorf("network property set without network: %v", props)
	}
	if key(imgA, false).key.Hash != k.key.Hash {
		t.Error("the key is not stable")
	}
	if key(imgB, false).key.Hash == k.key.Hash {
		t.Error("another image gives the same key")
	}
	if key(imgA, true).key.Hash == k.key.Hash {
		t.Error("network = True gives the same key")
	}

	bad, _ := store.Put([]byte("not json"))
	man := &File{Path: "lego-out/p/img.manifest.json"}
	a := &Action{Args: []string{"true"}, Inputs: []*File{man}, Outputs: []*File{{Path: "lego-out/p/o"}}, Image: man}
	_, err = computeKey(a, func(*File) (*artifact, error) { return &artifact{digest: bad}, nil }, nil, store.Get, "", "")
	if err == nil || !strings.Contains(err.Error(), "img.manifest.json") {
		t.Errorf("bad manifest file: %v", err)
	}
}

// A GPU action is keyed by its GPU count and model class (declared, or
// the machine's), never by the devices it will get.
func TestGPUActionKey(t *testing.T) {
	key := func(res Resources, class string) map[string]string {
		t.Helper()
		a := &Action{Args: []string{"/bin/true"}, Outputs: []*File{{Path: "lego-out/p/o"}}, Resources: res}
		k, err := computeKey(a, nil, nil, nil, class, "")
		if err != nil {
			t.Fatal(err)
		}
		props := map[string]string{"key": k.key.Hash}
		for _, p := range k.action.Platform.GetProperties() {
			props[p.Name] = p.Value
		}
		return props
	}
	h100 := key(Resources{GPUs: 2}, "H100")
	if h100[executors.PropGPUs] != "2" || h100[executors.PropGPUModel] != "H100" {
		t.Errorf("platform %v", h100)
	}
	if a100 := key(Resources{GPUs: 2}, "A100"); a100["key"] == h100["key"] {
		t.Error("another GPU model gives the same key")
	}
	if cpu := key(Resources{GPUs: 2}, "cpu"); cpu["key"] == h100["key"] {
		t.Error("running without GPUs gives the same key")
	}
	if declared := key(Resources{GPUs: 2, GPUModel: "H100"}, "A100"); declared["key"] != h100["key"] {
		t.Error("a declared gpu_model does not win over the machine's")
	}
	if none := key(Resources{}, "H100"); none[executors.PropGPUModel] != "" {
		t.Errorf("an action without GPUs is keyed by the GPU model: %v", none)
	}
}

// Host tools are keyed by what they are, not where they are installed:
// the same bytes at two paths give one key, different bytes of one name
// two keys.
func TestToolsKeyedByContentNotPath(t *testing.T) {
	dir := t.TempDir()
	write := func(p, content string) string {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lego1, lego2 := write("usr/bin/lego", "binary v1"), write("home/me/bin/lego", "binary v1")
	other := write("opt/x/lego", "another tool")
	tool := func(p string) (*repb.Digest, error) {
		b, err := os.ReadFile(p)
		return cas.DigestOf(b), err
	}
	key := func(sandbox string, tools ...string) *keyed {
		t.Helper()
		a := &Action{Args: append(append([]string(nil), tools...), "tool", "x"), Tools: tools,
			Outputs: []*File{{Path: "lego-out/p/o"}}}
		k, err := computeKey(a, nil, tool, nil, "", sandbox)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1, k2 := key("s", lego1), key("s", lego2)
	if k1.key.Hash != k2.key.Hash {
		t.Errorf("one binary at two paths: keys %s and %s", k1.key.Hash, k2.key.Hash)
	}
	if got := k1.command.Arguments[0]; got != ToolsDir+"/lego" {
		t.Errorf("argv[0] %q: the host path is in the command", got)
	}
	if key("s", other).key.Hash == k1.key.Hash {
		t.Errorf("two tools named lego share a key")
	}
	if key("t", lego1).key.Hash == k1.key.Hash {
		t.Errorf("the sandbox is not in the key")
	}
	// Both in one action: both staged, under different paths.
	both := key("s", lego1, other)
	if both.command.Arguments[0] == both.command.Arguments[1] || len(both.inputs) != 2 {
		t.Errorf("two tools of one name in one action: args %v, inputs %v", both.command.Arguments, both.inputs)
	}
}
