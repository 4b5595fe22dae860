package oci

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
)

// The image tools' flag errors, each a sentence that names the flag.
func TestToolErrors(t *testing.T) {
	for _, tc := range []struct {
		tool *legotool.Tool
		args []string
		err  string
	}{
		{pullTool, []string{"--ref", "x"}, "needs --out and --manifest and no positional arguments"},
		{archiveTool, []string{"--out", "o", "--manifest", "m", "extra"}, "needs --out and --manifest and no positional arguments"},
		{debianTool, []string{"--nope"}, "flag provided but not defined: -nope"},
		{appendTool, []string{"--out", "o", "--manifest", "m", "--file", "nodest"}, `--file "nodest": want DEST=SRC`},
		{appendTool, []string{"--out", "o", "--manifest", "m", "--env", "novalue"}, `--env "novalue": want K=V`},
	} {
		err := tc.tool.Main(context.Background(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s %q: error %v, want %q", tc.tool.Name, tc.args, err, tc.err)
		}
	}
}

// oci-archive then oci-append: layouts and manifest files the engine reads.
func TestArchiveThenAppend(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	src := filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(src, name.MustParseReference("example.com/lego/empty:1"), empty.Image); err != nil {
		t.Fatal(err)
	}
	manifest := func(p string) engine.ImageManifest {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m engine.ImageManifest
		if err := json.Unmarshal(b, &m); err != nil || !strings.HasPrefix(m.Digest, "sha256:") || m.Size <= 0 {
			t.Fatalf("%s: %s (%v)", p, b, err)
		}
		return m
	}
	base, baseM := filepath.Join(dir, "base.oci"), filepath.Join(dir, "base.json")
	if err := archiveTool.Main(context.Background(), []string{"--src", src, "--out", base, "--manifest", baseM}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "hello")
	if err := os.WriteFile(file, []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	next, nextM := filepath.Join(dir, "next.oci"), filepath.Join(dir, "next.json")
	err := appendTool.Main(context.Background(), []string{"--base", base, "--workdir", "/w",
		"--file", "/w/hello=" + file, "--env", "A=1", "--out", next, "--manifest", nextM})
	if err != nil {
		t.Fatal(err)
	}
	if manifest(baseM).Digest == manifest(nextM).Digest {
		t.Error("oci-append left the image as it was")
	}
}
