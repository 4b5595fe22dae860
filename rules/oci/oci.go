// Package oci holds the image rules: oci_pull, oci_archive, debian_image
// and image. Each image is an OCI layout directory plus a small manifest
// file naming its manifest digest (engine.ImageInfo); the layout's blobs
// land in the CAS under their OCI digests, which is where the containerd
// executor imports them from. The work is done by `lego tool` commands
// (package layout), so the lego binary is a tool of every image action.
package oci

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/legotool"
)

// Rules lists the image rule classes.
func Rules() []engine.Rule { return []engine.Rule{Pull{}, Archive{}, Debian{}, Image{}} }

// toolEnv is the environment of image tools: debootstrap and chroot live
// in sbin.
var toolEnv = map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// declareImage declares name.oci and name.manifest.json.
func declareImage(ctx *engine.Context, name string) (*engine.ImageInfo, error) {
	layout, err := ctx.DeclareFile(name+".oci", true)
	if err != nil {
		return nil, err
	}
	manifest, err := ctx.DeclareFile(name+".manifest.json", false)
	if err != nil {
		return nil, err
	}
	return &engine.ImageInfo{Manifest: manifest, Layout: layout}, nil
}

// toolAction is an action running `lego tool T ARGS... --out L --manifest M`.
func toolAction(ctx *engine.Context, t *legotool.Tool, info *engine.ImageInfo, inputs []*engine.File, args ...string) error {
	args = append(args, "--out", info.Layout.Path, "--manifest", info.Manifest.Path)
	a, err := legotool.Action(t, toolEnv, inputs, []*engine.File{info.Layout, info.Manifest}, args...)
	if err != nil {
		return err
	}
	return ctx.AddAction(a)
}

// provide makes the target an image whose default files are its manifest
// file and layout.
func provide(ctx *engine.Context, info *engine.ImageInfo) {
	ctx.Target.SetImage(info)
	ctx.Target.Files = []*engine.File{info.Manifest, info.Layout}
}

// Pull is oci_pull: an image fetched from a registry, pinned by digest.
type Pull struct{}

func (Pull) Kind() string { return "oci_pull" }

func (Pull) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "ref", Type: engine.AttrString, Mandatory: true, Doc: "image reference, e.g. docker.io/library/python:3.12"},
		{Name: "digest", Type: engine.AttrString, Doc: "sha256:… manifest digest (or pin it in ref as name@sha256:…)"},
	}
}

func (Pull) Analyze(ctx *engine.Context) error {
	ref := ctx.Attr("ref").(string)
	dg := ctx.Attr("digest").(string)
	name, pinned, hasPin := strings.Cut(ref, "@")
	switch {
	case dg == "" && !hasPin:
		return fmt.Errorf("attribute digest: %q has no digest; pinning is required for reproducibility (add digest = \"sha256:...\")", ref)
	case dg != "" && hasPin && pinned != dg:
		return fmt.Errorf("attribute digest: %s differs from the digest in ref %q", dg, ref)
	case dg == "":
		dg = pinned
	}
	if !strings.HasPrefix(dg, "sha256:") || len(dg) != len("sha256:")+64 {
		return fmt.Errorf("attribute digest: %q is not a sha256 digest", dg)
	}
	info, err := declareImage(ctx, ctx.Label().Name)
	if err != nil {
		return err
	}
	provide(ctx, info)
	if err := toolAction(ctx, pullTool, info, nil, "--ref", name+"@"+dg); err != nil {
		return err
	}
	a := ctx.Target.Actions[len(ctx.Target.Actions)-1]
	a.Network = true
	// debootstrap chroots, makes device nodes and chowns to the image's
	// users: root in its sandbox, and nothing more of the host to see.
	a.AsRoot = true
	return nil
}

// Archive is oci_archive: an image loaded from a docker-save or OCI tarball.
type Archive struct{}

func (Archive) Kind() string { return "oci_archive" }

func (Archive) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{{Name: "src", Type: engine.AttrLabel, Mandatory: true, Doc: "the tarball"}}
}

func (Archive) Analyze(ctx *engine.Context) error {
	src := ctx.Files("src")
	if len(src) != 1 {
		return fmt.Errorf("attribute src: want exactly one file, %s has %d", ctx.Attr("src").(engine.Label), len(src))
	}
	info, err := declareImage(ctx, ctx.Label().Name)
	if err != nil {
		return err
	}
	provide(ctx, info)
	return toolAction(ctx, archiveTool, info, src, "--src", src[0].Path)
}

// Debian is debian_image: a Debian base image made by debootstrap.
type Debian struct{}

func (Debian) Kind() string { return "debian_image" }

func (Debian) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "suite", Type: engine.AttrString, Default: "bookworm", Doc: "Debian suite"},
		{Name: "packages", Type: engine.AttrStringList, Doc: "packages to include (debootstrap --include)"},
		{Name: "mirror", Type: engine.AttrString, Doc: "Debian mirror URL; default: the first one the machine's apt sources name"},
	}
}

func (Debian) Analyze(ctx *engine.Context) error {
	info, err := declareImage(ctx, ctx.Label().Name)
	if err != nil {
		return err
	}
	provide(ctx, info)
	args := []string{"--suite", ctx.Attr("suite").(string)}
	pkgs := append([]string(nil), ctx.Attr("packages").([]string)...)
	sort.Strings(pkgs) // the order is not meaningful: keep it out of the key
	for _, p := range pkgs {
		if p == "" || strings.ContainsAny(p, ", \t") {
			return fmt.Errorf("attribute packages: bad package name %q", p)
		}
		args = append(args, "--package", p)
	}
	if m := ctx.Attr("mirror").(string); m != "" {
		args = append(args, "--mirror", m)
	}
	if err := toolAction(ctx, debianTool, info, nil, args...); err != nil {
		return err
	}
	a := ctx.Target.Actions[len(ctx.Target.Actions)-1]
	a.Network = true
	// debootstrap chroots, makes device nodes and chowns to the image's
	// users: root in its sandbox, and nothing more of the host to see.
	a.AsRoot = true
	return nil
}

// Image is image: layers appended to a base image: files, config, then one
// layer per run step, each step run in a container of the image so far.
type Image struct{}

func (Image) Kind() string { return "image" }

func (Image) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "base", Type: engine.AttrLabel, Mandatory: true, Doc: "the image to start from"},
		{Name: "files", Type: engine.AttrLabelDict, Doc: "absolute path in the image -> file label"},
		{Name: "env", Type: engine.AttrStringDict, Doc: "environment variables of the image"},
		{Name: "workdir", Type: engine.AttrString, Doc: "working directory of the image (and of run steps)"},
		{Name: "run", Type: engine.AttrStringList, Doc: "shell commands, each run in a container; their filesystem changes become layers"},
		{Name: "network", Type: engine.AttrBool, Doc: "let run steps use the network"},
		{Name: "resources", Type: engine.AttrStringDict, Doc: "cpu, memory of each run step"},
	}
}

func (Image) Analyze(ctx *engine.Context) error {
	baseLabel := ctx.Attr("base").(engine.Label)
	base := engine.ImageOf(ctx.Dep(baseLabel))
	if base == nil {
		return fmt.Errorf("attribute base: %s is a %s, not an image", baseLabel, ctx.Dep(baseLabel).Kind())
	}
	res, err := engine.ParseResources(ctx.Attr("resources").(map[string]string))
	if err != nil {
		return fmt.Errorf("attribute %w", err)
	}
	spec := Spec{Base: base, Files: map[string]*engine.File{}, Env: ctx.Attr("env").(map[string]string),
		Workdir: ctx.Attr("workdir").(string), Run: ctx.Attr("run").([]string), Network: ctx.Attr("network").(bool), Resources: res}
	files := ctx.Attr("files").(map[string]engine.Label)
	for _, d := range slices.Sorted(maps.Keys(files)) {
		if err := checkDest(d); err != nil {
			return err
		}
		l := files[d]
		fs := ctx.Dep(l).Files
		if len(fs) != 1 {
			return fmt.Errorf("attribute files: %s names %d files, want 1", l, len(fs))
		}
		spec.Files[d] = fs[0]
	}
	info, err := Build(ctx, ctx.Label().Name, spec)
	if err != nil {
		return err
	}
	provide(ctx, info)
	return nil
}

// Spec is an image made of a base and layers: files (a directory adds
// its whole tree), config, then one layer per run step.
type Spec struct {
	Base      *engine.ImageInfo
	Files     map[string]*engine.File // absolute path in the image -> file or directory
	Env       map[string]string
	Workdir   string
	Run       []string // shell commands, each run in a container of the image so far
	Network   bool     // for run steps
	Resources engine.Resources
}

// Build declares the actions making the image spec describes, with files
// named after name (name.oci, name.manifest.json, name.stepN...), and
// returns it. Rules that make images of their own (swe_env) use it too.
func Build(ctx *engine.Context, name string, spec Spec) (*engine.ImageInfo, error) {
	steps := spec.Run
	if spec.Workdir != "" && !path.IsAbs(spec.Workdir) {
		return nil, fmt.Errorf("attribute workdir: %q is not an absolute path", spec.Workdir)
	}

	// Files and config first, so that run steps see them.
	stage := func(i int) string {
		if i == len(steps) {
			return name
		}
		return fmt.Sprintf("%s.step%d", name, i)
	}
	cur, err := declareImage(ctx, stage(0))
	if err != nil {
		return nil, err
	}
	args := []string{"--base", spec.Base.Layout.Path}
	inputs := []*engine.File{spec.Base.Layout, spec.Base.Manifest}
	for _, d := range slices.Sorted(maps.Keys(spec.Files)) {
		if err := checkDest(d); err != nil {
			return nil, err
		}
		args = append(args, "--file", d+"="+spec.Files[d].Path)
		inputs = append(inputs, spec.Files[d])
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		args = append(args, "--env", k+"="+spec.Env[k])
	}
	if spec.Workdir != "" {
		args = append(args, "--workdir", spec.Workdir)
	}
	if err := toolAction(ctx, appendTool, cur, inputs, args...); err != nil {
		return nil, err
	}

	for i, step := range steps {
		layer, err := ctx.DeclareFile(fmt.Sprintf("%s.step%d.layer.tar", name, i), false)
		if err != nil {
			return nil, err
		}
		script := step
		if spec.Workdir != "" {
			script = "mkdir -p " + shQuote(spec.Workdir) + " && cd " + shQuote(spec.Workdir) + " && " + step
		}
		err = ctx.AddAction(&engine.Action{
			Mnemonic:    "ImageRun",
			Args:        []string{"/bin/sh", "-c", script},
			Env:         engine.ActionEnv(nil),
			Outputs:     []*engine.File{layer},
			Image:       cur.Manifest,
			Network:     spec.Network,
			LayerOutput: layer,
			Resources:   spec.Resources,
		})
		if err != nil {
			return nil, err
		}
		next, err := declareImage(ctx, stage(i+1))
		if err != nil {
			return nil, err
		}
		err = toolAction(ctx, appendTool, next, []*engine.File{cur.Layout, cur.Manifest, layer},
			"--base", cur.Layout.Path, "--layer", layer.Path)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

func checkDest(d string) error {
	if !path.IsAbs(d) || path.Clean(d) != d || d == "/" {
		return fmt.Errorf("attribute files: %q is not a clean absolute path in the image", d)
	}
	return nil
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
