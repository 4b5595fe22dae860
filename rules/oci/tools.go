package oci

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
	"github.com/legobuild/lego/rules/oci/layout"
)

// The image tools: each writes an OCI layout (--out) and its manifest
// file (--manifest).
var (
	pullTool = legotool.Register(&legotool.Tool{Name: "oci-pull", Run: runPull,
		Usage: "pull an image pinned by digest from a registry"})
	archiveTool = legotool.Register(&legotool.Tool{Name: "oci-archive", Run: runArchive,
		Usage: "read an image from a docker-save or OCI layout tarball"})
	debianTool = legotool.Register(&legotool.Tool{Name: "debian-image", Run: runDebian,
		Usage: "debootstrap a Debian image"})
	appendTool = legotool.Register(&legotool.Tool{Name: "oci-append", Run: runAppend,
		Usage: "add files, layers and settings to an image"})
)

// imageFlags are the outputs every image tool writes.
type imageFlags struct {
	fs       *flag.FlagSet
	out      *string
	manifest *string
}

func newImageFlags(fs *flag.FlagSet) *imageFlags {
	return &imageFlags{
		fs:       fs,
		out:      fs.String("out", "", "OCI layout directory to write"),
		manifest: fs.String("manifest", "", "file to write the manifest digest and size to, as JSON"),
	}
}

func (f *imageFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if *f.out == "" || *f.manifest == "" || f.fs.NArg() > 0 {
		return fmt.Errorf("needs --out and --manifest and no positional arguments")
	}
	return nil
}

// write records the image's manifest for the engine (engine.ImageManifest).
func (f *imageFlags) write(r layout.Result, err error) error {
	if err != nil {
		return err
	}
	b, err := json.Marshal(engine.ImageManifest{Digest: r.Digest, Size: r.Size})
	if err != nil {
		return err
	}
	return os.WriteFile(*f.manifest, append(b, '\n'), 0o644)
}

func runPull(ctx context.Context, fs *flag.FlagSet, args []string) error {
	f := newImageFlags(fs)
	ref := f.fs.String("ref", "", "name@sha256:… to pull")
	if err := f.parse(args); err != nil {
		return err
	}
	return f.write(layout.Pull(ctx, *ref, *f.out))
}

func runArchive(_ context.Context, fs *flag.FlagSet, args []string) error {
	f := newImageFlags(fs)
	src := f.fs.String("src", "", "docker-save or OCI layout tarball")
	if err := f.parse(args); err != nil {
		return err
	}
	return f.write(layout.Archive(*src, *f.out))
}

func runDebian(ctx context.Context, fs *flag.FlagSet, args []string) error {
	f := newImageFlags(fs)
	suite := f.fs.String("suite", "bookworm", "Debian suite")
	mirror := f.fs.String("mirror", "", "Debian mirror (default: from the machine's apt sources)")
	var pkgs legotool.Strings
	f.fs.Var(&pkgs, "package", "package to include (repeatable)")
	if err := f.parse(args); err != nil {
		return err
	}
	return f.write(layout.Debian(ctx, *f.out, layout.DebianOptions{
		Suite: *suite, Packages: pkgs, Mirror: *mirror, TempDir: os.Getenv("TMPDIR"), Log: os.Stderr,
	}))
}

func runAppend(_ context.Context, fs *flag.FlagSet, args []string) error {
	f := newImageFlags(fs)
	base := f.fs.String("base", "", "OCI layout of the base image")
	workdir := f.fs.String("workdir", "", "working directory of the image")
	var files, layers, env legotool.Strings
	f.fs.Var(&files, "file", "DEST=SRC: add the file SRC at the absolute path DEST (repeatable)")
	f.fs.Var(&layers, "layer", "a layer tar to append, e.g. a run step's changes (repeatable)")
	f.fs.Var(&env, "env", "K=V: set an environment variable (repeatable)")
	if err := f.parse(args); err != nil {
		return err
	}
	o := layout.AppendOptions{Env: map[string]string{}, Workdir: *workdir}
	for _, kv := range files {
		dest, src, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--file %q: want DEST=SRC", kv)
		}
		o.Files = append(o.Files, layout.File{Dest: dest, Src: src})
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--env %q: want K=V", kv)
		}
		o.Env[k] = v
	}
	// A run step's diff carries wall-clock times and the exec root's mount
	// points; normalized, the same changes give the same layer digest.
	for i, l := range layers {
		norm := filepath.Join(os.Getenv("TMPDIR"), fmt.Sprintf("layer%d.tar", i))
		if err := normalize(l, norm); err != nil {
			return fmt.Errorf("layer %s: %w", l, err)
		}
		o.Layers = append(o.Layers, norm)
	}
	return f.write(layout.Append(*base, *f.out, o))
}

// runStepMounts are the paths in a run step's diff that the container
// executor's mounts made, not the step.
var runStepMounts = []string{"lego"}

func normalize(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = layout.NormalizeLayer(in, out, runStepMounts)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
