package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/internal/testenv"
)

// The attacks a hostile BUILD file made on lego before the sandbox; each
// is refused, and nothing that was built is lost or changed.

func TestPoisoningGenruleChangesNoStoredOutput(t *testing.T) {
	root := t.TempDir()
	cache := t.TempDir()
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": `genrule(name = "victim", outs = ["v"], cmd = "echo good-output > $@")` + "\n"})
	mustLego(t, root, "build", "//:victim", "--cache_dir="+cache)
	out, err := exec.Command("sha256sum", filepath.Join(root, "lego-out/v")).Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Fields(string(out))[0]
	blob := filepath.Join(cache, "cas", sum[:2], sum)
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("the victim's blob: %v", err)
	}
	// By relative path from the exec root, by absolute path, and through
	// lego-out, where outputs are hardlinks of the store.
	writeFiles(t, root, map[string]string{"BUILD": `genrule(name = "victim", outs = ["v"], cmd = "echo good-output > $@")
genrule(name = "poison", outs = ["p"], cmd = """
set +e
for f in ../../cas/` + sum[:2] + `/` + sum + ` ` + blob + ` ` + filepath.Join(root, "lego-out/v") + `; do
  chmod u+w $$f; printf 'EVIL-OUTPUT\n' > $$f
done
echo done > $@
""")
`})
	lego(t, root, "build", "//:poison", "--cache_dir="+cache)
	if b, err := os.ReadFile(blob); err != nil || string(b) != "good-output\n" {
		t.Errorf("the victim's blob after the poisoner: %q, %v", b, err)
	}
	os.RemoveAll(filepath.Join(root, "lego-out"))
	mustLego(t, root, "build", "//:victim", "--cache_dir="+cache)
	if got := mustRead(t, filepath.Join(root, "lego-out/v")); got != "good-output\n" {
		t.Errorf("served %q", got)
	}
	verifyStore(t, cache)
}

func TestKeyStealerReadsNothing(t *testing.T) {
	root := t.TempDir()
	port := testenv.Replier(t, "secret-from-a-local-port\n")
	writeFiles(t, root, map[string]string{
		"WORKSPACE":       "",
		"private/key.txt": "undeclared-workspace-secret\n",
		"BUILD": fmt.Sprintf(`genrule(name = "steal", outs = ["loot"], cmd = """
set +e
{
  tr '\\0' '\\n' < /proc/$$PPID/environ
  for p in /proc/[0-9]*; do tr '\\0' '\\n' < $$p/environ; done
  cat /etc/passwd /etc/shadow %s/private/key.txt
  cat < /dev/tcp/127.0.0.1/%d
  env
} > $@ 2>&1
true
""")
`, root, port),
	})
	cmd := exec.Command(legoBin, "build", "//:steal", "--cache_dir="+t.TempDir())
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HOME="+root, "OPENAI_API_KEY=sk-model-key-of-the-user")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lego build: %v\n%s", err, out)
	}
	loot := mustRead(t, filepath.Join(root, "lego-out/loot"))
	for _, secret := range []string{"sk-model-key", "undeclared-workspace-secret", "secret-from-a-local-port"} {
		if strings.Contains(loot, secret) {
			t.Errorf("the genrule read %q:\n%s", secret, loot)
		}
	}
	host, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(host), "\n") {
		if line != "" && !strings.HasPrefix(line, "root:") && !strings.HasPrefix(line, "nobody:") && strings.Contains(loot, line) {
			t.Errorf("the genrule read the host's passwd line %q", line)
		}
	}
}

func TestFailingStepFailsTheGenrule(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "big": strings.Repeat("data\n", 1000), "BUILD": `
genrule(name = "false", outs = ["f"], cmd = "false; echo > $@")
genrule(name = "pipe", srcs = ["big"], outs = ["h"], cmd = "(cat $<; kill -9 $$BASHPID) | sha256sum > $@")
genrule(name = "unset", outs = ["u"], cmd = "echo $$NO_SUCH_VARIABLE > $@")
genrule(name = "optout", outs = ["o"], cmd = "set +euo pipefail; false; echo ok > $@")
`})
	cache := t.TempDir()
	for _, tc := range []struct{ target, want string }{
		{"false", "exit code 1"}, {"pipe", "exit code 137"}, {"unset", "unbound variable"},
	} {
		r := lego(t, root, "build", "//:"+tc.target, "--cache_dir="+cache)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("//:%s: exit %d, want a failure with %q:\n%s", tc.target, r.code, tc.want, r.stderr)
		}
	}
	mustLego(t, root, "build", "//:optout", "--cache_dir="+cache)
}

// markerProcs lists the host processes whose command line has marker.
func markerProcs(marker string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), marker) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			if !processGone(pid) {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

func TestSIGKILLedLegoLeavesNoActionProcess(t *testing.T) {
	root := t.TempDir()
	marker := fmt.Sprintf("lego-orphan-%d", time.Now().UnixNano())
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": `genrule(name = "daemon", outs = ["d"], cmd = "setsid bash -c 'exec -a ` + marker + ` sleep 300' & exec -a ` + marker + `-main sleep 300")` + "\n"})
	cmd := exec.Command(legoBin, "build", "//:daemon", "--cache_dir="+t.TempDir())
	cmd.Dir = root
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(markerProcs(marker)) < 2 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the action's processes did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); len(markerProcs(marker)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("processes %v outlived lego", markerProcs(marker))
		}
	}
}

// The lego binary is in the key by digest: the same binary at two paths
// (two users' installs) shares every key of its tool actions.
func TestTwoInstallsShareKeys(t *testing.T) {
	b, err := os.ReadFile(legoBin)
	if err != nil {
		t.Fatal(err)
	}
	var bins []string
	for _, dir := range []string{"usr/local/bin", "home/someone/go/bin"} {
		p := filepath.Join(t.TempDir(), dir, "lego")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, p)
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "calc/calc.py": "def add(a, b):\n    return a + b\n",
		"BUILD": `git_repo(name = "calc", path = "calc", srcs = glob(["calc/**"]))
genrule(name = "g", outs = ["g.txt"], cmd = "echo hi > $@")
`})
	cache := t.TempDir()
	run := func(bin string) (int, int) {
		t.Helper()
		cmd := exec.Command(bin, "build", "//...", "--cache_dir="+cache)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "HOME="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s build: %v\n%s", bin, err, out)
		}
		total, ran, _ := counts(t, result{stderr: string(out)})
		return total, ran
	}
	if total, ran := run(bins[0]); total != 2 || ran != 2 {
		t.Fatalf("first install: %d of %d ran", ran, total)
	}
	os.RemoveAll(filepath.Join(root, "lego-out"))
	if total, ran := run(bins[1]); ran != 0 {
		t.Errorf("second install at another path: %d of %d actions executed, want 0", ran, total)
	}
}

func TestSandboxNoneWarnsOnce(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": `
genrule(name = "a", outs = ["a"], cmd = "cat /etc/hostname > $@ || echo > $@")
genrule(name = "b", outs = ["b"], cmd = "echo b > $@")
`})
	r := mustLego(t, root, "build", "//...", "--sandbox=none", "--cache_dir="+t.TempDir())
	if n := strings.Count(r.stderr, "--sandbox=none"); n != 1 {
		t.Errorf("%d warnings about --sandbox=none, want 1:\n%s", n, r.stderr)
	}
	if r := lego(t, root, "build", "//...", "--sandbox=bogus", "--cache_dir="+t.TempDir()); r.code == 0 || !strings.Contains(r.stderr, "--sandbox=bogus") {
		t.Errorf("--sandbox=bogus: exit %d\n%s", r.code, r.stderr)
	}
}

// Where namespaces cannot be made, lego says so and refuses, unless told
// --sandbox=none. The machine is made such by a user namespace whose limit
// of mount namespaces is 0 (it binds nothing outside it).
func TestNoNamespacesRefusesUnlessSandboxNone(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": `genrule(name = "a", outs = ["a"], cmd = "echo a > $@")` + "\n"})
	build := func(extra ...string) (string, error) {
		t.Helper()
		args := append([]string{"-U", "-r", "sh", "-c", `echo 0 > /proc/sys/user/max_mnt_namespaces && exec "$@"`, "sh",
			legoBin, "build", "//:a", "--cache_dir=" + t.TempDir()}, extra...)
		cmd := exec.Command("unshare", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "HOME="+root)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := build()
	if err == nil || !strings.Contains(out, "pass --sandbox=none") {
		t.Errorf("without namespaces: err %v\n%s", err, out)
	}
	if _, serr := os.Stat(filepath.Join(root, "lego-out/a")); serr == nil {
		t.Errorf("the action ran without its sandbox")
	}
	out, err = build("--sandbox=none")
	if err != nil || !strings.Contains(out, "WARNING: --sandbox=none") {
		t.Errorf("--sandbox=none: err %v\n%s", err, out)
	}
	if got := mustRead(t, filepath.Join(root, "lego-out/a")); got != "a\n" {
		t.Errorf("output %q", got)
	}
}
