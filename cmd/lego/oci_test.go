package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors/containerd"
	"github.com/legobuild/lego/internal/testenv"
)

var (
	ctrdOnce sync.Once
	ctrdAddr string
	ctrdStop = func() {}
	ctrdErr  error
)

// containerdAddr starts containerd (or finds the test command's) once per
// test binary; TestMain stops it.
func containerdAddr(t *testing.T) string {
	t.Helper()
	ctrdOnce.Do(func() { ctrdAddr, ctrdStop, ctrdErr = testenv.Containerd() })
	if ctrdErr != nil {
		t.Fatalf("containerd: %v", ctrdErr)
	}
	return ctrdAddr
}

// executedActions lists "label mnemonic" of the actions a build executed,
// from its event file.
func executedActions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev engine.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev.Type == engine.EvActionExecuted {
			out = append(out, ev.Label+" "+ev.Mnemonic)
		}
	}
	sort.Strings(out)
	return out
}

// ctrEmpty checks with containerd's own CLI that lego left no container
// and no task behind.
func ctrEmpty(t *testing.T, addr, when string) {
	t.Helper()
	for _, what := range []string{"containers", "tasks"} {
		out, err := exec.Command("ctr", "--address", addr, "-n", containerd.Namespace, what, "ls", "-q").CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s ls: %v\n%s", what, err, out)
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("%s: ctr %s ls shows %q", when, what, s)
		}
	}
}

func imageWS(t *testing.T, packages string) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"img/BUILD": `
debian_image(name = "py", packages = [` + packages + `])
genrule(
    name = "hello",
    outs = ["hello.txt"],
    image = ":py",
    cmd = "python3 -c 'import sys; open(\"$@\", \"w\").write(\"py%d\" % sys.version_info[0])'",
)
genrule(name = "host", outs = ["host.txt"], cmd = "echo host > $@")
genrule(name = "fails", outs = ["never.txt"], image = ":py", cmd = "echo doomed >&2; exit 3")
genrule(name = "sleeps", outs = ["slept.txt"], image = ":py", cmd = "sleep 120; touch $@")
genrule(
    name = "hog",
    outs = ["hog.txt"],
    image = ":py",
    resources = {"memory": "64MiB"},
    cmd = "python3 -c 'x = bytearray(512 << 20)' && touch $@",
)
`,
	})
	return root
}

// TestDebianImageActions covers a debian_image with python3, an action in
// it, a fully cached rebuild, a package-list change that reruns exactly the
// image and its user, and no leftovers after success, failure and Ctrl-C.
func TestDebianImageActions(t *testing.T) {
	addr := containerdAddr(t)
	root := imageWS(t, `"python3"`)
	cache := t.TempDir()
	ev := filepath.Join(t.TempDir(), "events.jsonl")
	build := func(args ...string) result {
		t.Helper()
		return mustLego(t, root, append([]string{"build", "--cache_dir=" + cache, "--containerd_address=" + addr,
			"--build_event_json_file=" + ev}, args...)...)
	}

	build("//img:hello", "//img:host")
	if b, err := os.ReadFile(filepath.Join(root, "lego-out/img/hello.txt")); err != nil || string(b) != "py3" {
		t.Fatalf("hello.txt = %q, %v", b, err)
	}
	r := build("//img:hello", "//img:host")
	if total, ran, cached := counts(t, r); ran != 0 || cached != total {
		t.Fatalf("rebuild: %d executed, %d cached of %d", ran, cached, total)
	}
	ctrEmpty(t, addr, "after a build")

	// With no containerd, an action in an image fails before it starts
	// and says how to start one (--executor=auto).
	nc := lego(t, root, "build", "//img:fails", "--cache_dir="+cache, "--containerd_address="+filepath.Join(t.TempDir(), "none.sock"))
	if nc.code == 0 || !strings.Contains(nc.stderr, "apt-get install containerd runc") || strings.Contains(nc.stderr, "exit code 3") {
		t.Errorf("no containerd: exit %d\n%s", nc.code, nc.stderr)
	}

	// The memory of resources is the container's limit.
	h := lego(t, root, "build", "//img:hog", "--cache_dir="+cache, "--containerd_address="+addr)
	if h.code == 0 || !strings.Contains(h.stderr, "OOM-killed: the action exceeded its memory limit of 64 MiB") {
		t.Errorf("memory hog: exit %d\n%s", h.code, h.stderr)
	}

	// A failing action in the image: its exit code and stderr are
	// reported, and nothing is left behind.
	f := lego(t, root, "build", "//img:fails", "--cache_dir="+cache, "--containerd_address="+addr)
	if f.code == 0 || !strings.Contains(f.stderr, "exit code 3") || !strings.Contains(f.stderr, "doomed") {
		t.Errorf("failing action: exit %d\n%s", f.code, f.stderr)
	}
	ctrEmpty(t, addr, "after a failed build")

	// Ctrl-C while the container runs.
	cmd := exec.Command(legoBin, "build", "//img:sleeps", "--cache_dir="+cache, "--containerd_address="+addr)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := exec.Command("ctr", "--address", addr, "-n", containerd.Namespace, "tasks", "ls", "-q").Output()
		if strings.TrimSpace(string(out)) != "" {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the container never started\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 130 {
		t.Errorf("interrupted build: %v\n%s", err, stderr.String())
	}
	ctrEmpty(t, addr, "after Ctrl-C")

	// Another package list: the image and the action in it rerun, the
	// host action does not.
	writeFiles(t, root, map[string]string{"img/BUILD": strings.Replace(
		mustRead(t, filepath.Join(root, "img/BUILD")), `packages = ["python3"]`, `packages = ["python3", "less"]`, 1)})
	build("//img:hello", "//img:host")
	got := executedActions(t, ev)
	want := []string{"//img:hello Genrule", "//img:py DebianImage"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("after the package change, executed %v, want %v", got, want)
	}
	verifyStore(t, cache)
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImageRunStepIsReproducible builds an image whose run step creates
// files, uses it in a later action, and checks that two builds from clean
// caches give the same image digest.
func TestImageRunStepIsReproducible(t *testing.T) {
	addr := containerdAddr(t)
	// A base image as a tarball, so that both clean builds start from the
	// same bytes (debootstrap itself is not reproducible).
	base := baseTarball(t, addr)
	var digests []string
	for i := range 2 {
		root := t.TempDir()
		writeFiles(t, root, map[string]string{
			"WORKSPACE":    "",
			"app/data.txt": "data\n",
			"app/BUILD": `
oci_archive(name = "base", src = "base.tar")
image(
    name = "app",
    base = ":base",
    files = {"/app/data.txt": "data.txt"},
    env = {"GREETING": "hi"},
    workdir = "/app",
    run = ["mkdir -p /opt/made && echo built > /opt/made/file && cp data.txt copied.txt"],
)
genrule(name = "use", outs = ["use.txt"], image = ":app", cmd = "cat /opt/made/file /app/copied.txt > $@; echo $$GREETING >> $@")
`,
		})
		if err := os.Link(base, filepath.Join(root, "app/base.tar")); err != nil {
			t.Fatal(err)
		}
		mustLego(t, root, "build", "//app:use", "--cache_dir="+t.TempDir(), "--containerd_address="+addr)
		if got := mustRead(t, filepath.Join(root, "lego-out/app/use.txt")); got != "built\ndata\nhi\n" {
			t.Errorf("build %d: use.txt = %q", i, got)
		}
		var m engine.ImageManifest
		if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/app/app.manifest.json"))), &m); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, m.Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("image digests of two clean builds differ: %v", digests)
	}
	ctrEmpty(t, addr, "after the image builds")
}

var (
	baseOnce sync.Once
	basePath string
)

// baseTarball builds a debian_image (python3) once and packs its layout
// as an OCI tarball.
func baseTarball(t *testing.T, addr string) string {
	t.Helper()
	baseOnce.Do(func() {
		root := filepath.Join(os.TempDir(), "lego-cli-base")
		os.RemoveAll(root)
		writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": `debian_image(name = "py", packages = ["python3"])`})
		mustLego(t, root, "build", "//:py", "--cache_dir="+filepath.Join(root, "cache"), "--containerd_address="+addr)
		basePath = filepath.Join(root, "base.tar")
		if err := tarDir(filepath.Join(root, "lego-out/py.oci"), basePath); err != nil {
			t.Fatal(err)
		}
	})
	if basePath == "" {
		t.Fatal("no base image")
	}
	return basePath
}

func tarDir(dir, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func TestImageBadInput(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"BUILD": `
oci_pull(name = "unpinned", ref = "docker.io/library/python:3.12")
oci_pull(name = "offline", ref = "127.0.0.1:1/nothing/here@sha256:` + strings.Repeat("ab", 32) + `")
debian_image(name = "deb")
genrule(name = "in_image", outs = ["o"], image = ":deb", cmd = "touch $@")
genrule(name = "not_an_image", outs = ["p"], image = ":in_image", cmd = "touch $@")
`,
	})
	cache := t.TempDir()
	r := lego(t, root, "build", "//:unpinned", "--cache_dir="+cache)
	if r.code == 0 || !strings.Contains(r.stderr, "pinning is required") || !strings.Contains(r.stderr, "BUILD:2") {
		t.Errorf("unpinned pull: exit %d\n%s", r.code, r.stderr)
	}
	r = lego(t, root, "build", "//:offline", "--cache_dir="+cache)
	if r.code == 0 || !strings.Contains(r.stderr, "127.0.0.1:1/nothing/here") {
		t.Errorf("offline pull: exit %d\n%s", r.code, r.stderr)
	}
	r = lego(t, root, "build", "//:not_an_image", "--cache_dir="+cache)
	if r.code == 0 || !strings.Contains(r.stderr, "not an image") {
		t.Errorf("image attribute naming a genrule: exit %d\n%s", r.code, r.stderr)
	}
	// No containerd: the action fails before it starts and says how to
	// start one. (The image itself is built on the host first.)
	r = lego(t, root, "build", "//:in_image", "--cache_dir="+cache, "--executor=containerd",
		"--containerd_address="+filepath.Join(t.TempDir(), "no.sock"))
	if r.code == 0 || !strings.Contains(r.stderr, "apt-get install containerd runc") {
		t.Errorf("no containerd: exit %d\n%s", r.code, r.stderr)
	}
}
