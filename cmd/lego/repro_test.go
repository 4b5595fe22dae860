package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors/containerd"
	"github.com/legobuild/lego/internal/testenv"
)

// reproWS is a chain of deterministic genrules with one sampling step in
// the middle: stats hashes the samples, so it is identical only when it
// is given the cached samples again.
func reproWS(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"p/BUILD": `
genrule(name = "seed", outs = ["seed.txt"], cmd = "echo 42 > $@")
genrule(name = "double", srcs = [":seed"], outs = ["double.txt"], cmd = "echo $$(( $$(cat $<) * 2 )) > $@")
genrule(
    name = "sample",
    srcs = [":double"],
    outs = ["sample.txt", "draws.txt"],
    cmd = "cat $< > $(location sample.txt); head -c 16 /dev/urandom | od -An -tx1 >> $(location sample.txt); head -c 16 /dev/urandom | od -An -tx1 > $(location draws.txt)",
)
genrule(name = "stats", srcs = [":sample"], outs = ["stats.txt"], cmd = "cat $(SRCS) | sha256sum > $@")
genrule(name = "table", srcs = [":stats", ":double"], outs = ["table.txt"], cmd = "cat $(SRCS) > $@")
`,
	})
	return root
}

// treeState maps each file under the dirs to its inode and content hash;
// lego-out/.lego, the builds' own history, is left out.
func treeState(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".lego" {
				return filepath.SkipDir
			}
			if d.IsDir() {
				return nil
			}
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			out[p] = fmt.Sprintf("%d %s", st.Sys().(*syscall.Stat_t).Ino, hex.EncodeToString(h[:]))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestReproNamesNondeterministicAction(t *testing.T) {
	root := reproWS(t)
	cache := t.TempDir()
	report := filepath.Join(t.TempDir(), "repro.json")

	// On a fresh cache, repro builds first (5 actions run), then re-executes.
	r := lego(t, root, "repro", "//p:table", "--cache_dir="+cache, "--report_json="+report, "-j", "2")
	if r.code != exitDiffers {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitDiffers, r.stdout, r.stderr)
	}
	if total, ran, _ := counts(t, r); total != 5 || ran != 5 {
		t.Errorf("the build before repro ran %d of %d actions, want 5 of 5\n%s", ran, total, r.stderr)
	}
	for _, l := range []string{"seed", "double", "stats", "table"} {
		if want := fmt.Sprintf("identical //p:%s Genrule p/%s.txt\n", l, l); !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
	// draws.txt sorts before sample.txt.
	if !strings.Contains(r.stdout, "differs   //p:sample Genrule p/sample.txt: first differing file lego-out/p/draws.txt (cached ") {
		t.Errorf("report does not name sample with its first differing file:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "repro: 5 actions re-executed: 4 identical, 1 differ (//p:sample)\n") {
		t.Errorf("no summary line:\n%s", r.stdout)
	}

	var rep engine.ReproReport
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Reexecuted != 5 || rep.Identical != 4 || rep.Differ != 1 || !reflect.DeepEqual(rep.DifferTargets, []string{"//p:sample"}) {
		t.Errorf("JSON report %+v", rep)
	}
	for _, a := range rep.Actions {
		if a.Label == "//p:sample" && (a.Status != engine.ReproDiffers || a.File != "lego-out/p/draws.txt" ||
			a.CachedDigest == "" || a.RerunDigest == "" || a.CachedDigest == a.RerunDigest) {
			t.Errorf("JSON report of sample: %+v", a)
		}
	}

	// Again with the cache named by a .legorc build line: the build is a
	// null build, and the repro leaves lego-out and the cache as they were.
	writeFiles(t, root, map[string]string{".legorc": "build --cache_dir=" + cache + "\n"})
	before := treeState(t, filepath.Join(root, "lego-out"), filepath.Join(cache, "ac"), filepath.Join(cache, "cas"))
	r = lego(t, root, "repro", "//p:table")
	if r.code != exitDiffers {
		t.Fatalf("second repro: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if total, ran, cached := counts(t, r); ran != 0 || cached != total {
		t.Errorf("the build before the second repro ran %d actions\n%s", ran, r.stderr)
	}
	state := func(when string) {
		t.Helper()
		after := treeState(t, filepath.Join(root, "lego-out"), filepath.Join(cache, "ac"), filepath.Join(cache, "cas"))
		for p, v := range after {
			if before[p] != v {
				t.Errorf("%s: %s changed or appeared", when, p)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%s: %s disappeared", when, p)
			}
		}
	}
	state("after repro")
	r = mustLego(t, root, "build", "//p:table")
	if total, ran, cached := counts(t, r); ran != 0 || cached != total {
		t.Errorf("build after repro ran %d actions, want none\n%s", ran, r.stderr)
	}
	state("after the build that followed")
	if ents, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(ents) != 0 {
		t.Errorf("repro left %d entries in the cache's tmp", len(ents))
	}

	// Deterministic stages only: exit 0.
	r = lego(t, root, "repro", "//p:double")
	if r.code != 0 || !strings.Contains(r.stdout, "repro: 2 actions re-executed: 2 identical, 0 differ\n") {
		t.Errorf("repro //p:double: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestReproImageActions re-executes actions that run in an image after
// the image was removed from containerd: the container executor then
// imports it from the scratch store, into which repro staged its blobs.
func TestReproImageActions(t *testing.T) {
	addr := containerdAddr(t)
	// The per-machine debootstrap image, packed as a tarball.
	if _, err := testenv.DebianImage(testenv.Store(t), "python3"); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"p/BUILD": `
oci_archive(name = "base", src = "base.tar")
genrule(name = "answer", outs = ["answer.txt"], image = ":base", cmd = "python3 -c 'print(6 * 7)' > $@")
genrule(name = "roll", outs = ["roll.txt"], image = ":base", cmd = "python3 -c 'import os; print(os.urandom(8).hex())' > $@")
`,
	})
	if err := tarDir(filepath.Join(os.TempDir(), "lego-test-images", "bookworm-python3"), filepath.Join(root, "p/base.tar")); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	mustLego(t, root, "build", "//p:answer", "//p:roll", "--cache_dir="+cache, "--containerd_address="+addr)
	var m engine.ImageManifest
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/p/base.manifest.json"))), &m); err != nil {
		t.Fatal(err)
	}
	name := containerd.ImageName(m.Digest)
	if out, err := exec.Command("ctr", "--address", addr, "-n", containerd.Namespace, "images", "rm", "--sync", name).CombinedOutput(); err != nil {
		t.Fatalf("ctr images rm: %v\n%s", err, out)
	}

	r := lego(t, root, "repro", "//p:answer", "//p:roll", "--cache_dir="+cache, "--containerd_address="+addr)
	if r.code != exitDiffers {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitDiffers, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"identical //p:answer Genrule p/answer.txt\n",
		"identical //p:base ",
		"differs   //p:roll Genrule p/roll.txt: first differing file lego-out/p/roll.txt (cached ",
		"repro: 3 actions re-executed: 2 identical, 1 differ (//p:roll)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	ctrEmpty(t, addr, "after repro")
}
