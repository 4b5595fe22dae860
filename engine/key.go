package engine

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// artifact is the built state of a File: its digest, or its Tree for a directory.
type artifact struct {
	digest *repb.Digest // file content, or the Tree blob for a directory
	exec   bool
	tree   *repb.Tree // directories only
}

// keyed is an action made concrete: the REAPI messages and their digest.
type keyed struct {
	key     *repb.Digest
	action  *repb.Action
	command *repb.Command
	dirs    map[string]*repb.Directory
	inputs  map[string]string // exec path -> digest hash, for explain
}

var marshal = proto.MarshalOptions{Deterministic: true}

func digestProto(m proto.Message) (*repb.Digest, error) {
	b, err := marshal.Marshal(m)
	if err != nil {
		return nil, err
	}
	return cas.DigestOf(b), nil
}

// merkle is a directory being assembled for an input root.
type merkle struct {
	files map[string]*repb.FileNode
	dirs  map[string]*merkle
	fixed *repb.Tree // an input directory artifact, taken whole
}

func (m *merkle) dir(name string) (*merkle, error) {
	if m.dirs == nil {
		m.dirs = map[string]*merkle{}
	}
	d := m.dirs[name]
	if d == nil {
		if _, clash := m.files[name]; clash {
			return nil, fmt.Errorf("input %q is both a file and a directory", name)
		}
		d = &merkle{}
		m.dirs[name] = d
	}
	return d, nil
}

func (m *merkle) add(p string, a *artifact) error {
	cur := m
	parts := strings.Split(p, "/")
	for _, part := range parts[:len(parts)-1] {
		var err error
		if cur, err = cur.dir(part); err != nil {
			return err
		}
		if cur.fixed != nil {
			return nil // inside a directory artifact that is already an input
		}
	}
	name := parts[len(parts)-1]
	if a.tree != nil {
		d, err := cur.dir(name)
		if err != nil {
			return err
		}
		d.fixed = a.tree
		return nil
	}
	if _, clash := cur.dirs[name]; clash {
		return fmt.Errorf("input %q is both a file and a directory", p)
	}
	if cur.files == nil {
		cur.files = map[string]*repb.FileNode{}
	}
	cur.files[name] = &repb.FileNode{Name: name, Digest: a.digest, IsExecutable: a.exec}
	return nil
}

// digest computes the Directory digest, recording every Directory in out.
func (m *merkle) digest(out map[string]*repb.Directory) (*repb.Digest, error) {
	if m.fixed != nil {
		for _, c := range m.fixed.Children {
			d, err := digestProto(c)
			if err != nil {
				return nil, err
			}
			out[cas.Key(d)] = c
		}
		d, err := digestProto(m.fixed.Root)
		if err != nil {
			return nil, err
		}
		out[cas.Key(d)] = m.fixed.Root
		return d, nil
	}
	dir := &repb.Directory{}
	for _, f := range m.files {
		dir.Files = append(dir.Files, f)
	}
	sort.Slice(dir.Files, func(i, j int) bool { return dir.Files[i].Name < dir.Files[j].Name })
	names := make([]string, 0, len(m.dirs))
	for n := range m.dirs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, err := m.dirs[n].digest(out)
		if err != nil {
			return nil, err
		}
		dir.Directories = append(dir.Directories, &repb.DirectoryNode{Name: n, Digest: d})
	}
	d, err := digestProto(dir)
	if err != nil {
		return nil, err
	}
	out[cas.Key(d)] = dir
	return d, nil
}

// computeKey builds the REAPI Action for a and its digest. inputs gives the
// built state of every input; tools maps a host tool path to its digest.
func computeKey(a *Action, inputs func(*File) (*artifact, error), tool func(string) (*repb.Digest, error), blob func(*repb.Digest) ([]byte, error), gpuClass, sandbox string) (*keyed, error) {
	root := &merkle{}
	k := &keyed{inputs: make(map[string]string, len(a.Inputs)), dirs: map[string]*repb.Directory{}}
	for _, in := range a.Inputs {
		art, err := inputs(in)
		if err != nil {
			return nil, err
		}
		if err := root.add(in.Path, art); err != nil {
			return nil, err
		}
		k.inputs[in.Path] = art.digest.Hash
	}
	args := a.Args
	if a.Image == nil {
		// The image, when there is one, holds what runs; host tools are
		// not used.
		var err error
		if args, err = stageTools(a, root, k, tool); err != nil {
			return nil, err
		}
	}
	rootDigest, err := root.digest(k.dirs)
	if err != nil {
		return nil, err
	}
	props := make([]*repb.Platform_Property, 0, len(a.Platform)+4)
	if a.Image == nil && sandbox != "" {
		props = append(props, &repb.Platform_Property{Name: executors.PropSandbox, Value: sandbox})
	}
	if a.AsRoot {
		props = append(props, &repb.Platform_Property{Name: executors.PropAsRoot, Value: "true"})
	}
	if len(a.HostPaths) > 0 {
		for _, p := range a.HostPaths {
			if !filepath.IsAbs(p) || strings.Contains(p, ":") {
				return nil, fmt.Errorf("host path %q: want an absolute path without ':'", p)
			}
		}
		props = append(props, &repb.Platform_Property{Name: executors.PropHostPaths, Value: strings.Join(a.HostPaths, ":")})
	}
	if a.Image != nil {
		art, err := inputs(a.Image)
		if err != nil {
			return nil, err
		}
		b, err := blob(art.digest)
		if err != nil {
			return nil, fmt.Errorf("image manifest %s: %w", a.Image.ShortPath(), err)
		}
		var m ImageManifest
		if err := json.Unmarshal(b, &m); err != nil || !strings.HasPrefix(m.Digest, "sha256:") || m.Size <= 0 {
			return nil, fmt.Errorf("image manifest %s: not an image digest: %q", a.Image.ShortPath(), b)
		}
		props = append(props,
			&repb.Platform_Property{Name: executors.PropImage, Value: m.Digest},
			&repb.Platform_Property{Name: executors.PropImageSize, Value: strconv.FormatInt(m.Size, 10)})
	}
	if a.Resources.GPUs > 0 {
		// The model class, not the devices: numerics differ between
		// models, and the UUIDs are whichever were free.
		class := a.Resources.GPUModel
		if class == "" {
			class = gpuClass
		}
		props = append(props,
			&repb.Platform_Property{Name: executors.PropGPUs, Value: strconv.Itoa(a.Resources.GPUs)},
			&repb.Platform_Property{Name: executors.PropGPUModel, Value: class})
	}
	if a.Network {
		props = append(props, &repb.Platform_Property{Name: executors.PropNetwork, Value: "true"})
	}
	if len(a.SecretEnv) > 0 {
		names := slices.Sorted(slices.Values(a.SecretEnv))
		props = append(props, &repb.Platform_Property{Name: executors.PropSecretEnv, Value: strings.Join(names, ",")})
	}
	if a.LayerOutput != nil {
		props = append(props, &repb.Platform_Property{Name: executors.PropLayerOutput, Value: a.LayerOutput.Path})
	}
	for n, v := range a.Platform {
		props = append(props, &repb.Platform_Property{Name: n, Value: v})
	}
	sort.Slice(props, func(i, j int) bool {
		if props[i].Name != props[j].Name {
			return props[i].Name < props[j].Name
		}
		return props[i].Value < props[j].Value
	})
	var platform *repb.Platform
	if len(props) > 0 {
		platform = &repb.Platform{Properties: props}
	}
	cmd := &repb.Command{Arguments: args, Platform: platform}
	envNames := make([]string, 0, len(a.Env))
	for n := range a.Env {
		envNames = append(envNames, n)
	}
	sort.Strings(envNames)
	for _, n := range envNames {
		cmd.EnvironmentVariables = append(cmd.EnvironmentVariables, &repb.Command_EnvironmentVariable{Name: n, Value: a.Env[n]})
	}
	for _, o := range a.Outputs {
		cmd.OutputPaths = append(cmd.OutputPaths, o.Path)
	}
	sort.Strings(cmd.OutputPaths)
	cmdDigest, err := digestProto(cmd)
	if err != nil {
		return nil, err
	}
	act := &repb.Action{CommandDigest: cmdDigest, InputRootDigest: rootDigest, Platform: platform}
	if a.Timeout > 0 {
		act.Timeout = durationpb.New(a.Timeout)
	}
	if k.key, err = digestProto(act); err != nil {
		return nil, err
	}
	k.action, k.command = act, cmd
	return k, nil
}

// ToolsDir is where host tools are staged in an exec root.
const ToolsDir = ".lego/tools"

// stageTools puts a's host tools in its input root, under ToolsDir by
// their base names, and returns its arguments with each tool's host path
// replaced by its staged one. The key then holds what a tool is, by
// digest, and not where it is installed: two copies of lego at two paths
// share every key, and the action (which sees no host path but system
// directories) runs the very bytes that were keyed.
func stageTools(a *Action, root *merkle, k *keyed, tool func(string) (*repb.Digest, error)) ([]string, error) {
	if len(a.Tools) == 0 {
		return a.Args, nil
	}
	staged := make(map[string]string, len(a.Tools)) // host path -> staged path
	for _, t := range a.Tools {
		if _, ok := staged[t]; ok {
			continue
		}
		d, err := tool(t)
		if err != nil {
			return nil, fmt.Errorf("tool %s: %w", t, err)
		}
		p := ToolsDir + "/" + filepath.Base(t)
		if h, ok := k.inputs[p]; ok && h != d.Hash {
			// Two different tools of one name: the digest tells them apart.
			p = ToolsDir + "/" + d.Hash[:16] + "/" + filepath.Base(t)
		}
		staged[t] = p
		if _, ok := k.inputs[p]; ok {
			continue // the same bytes under another host path
		}
		if err := root.add(p, &artifact{digest: d, exec: true}); err != nil {
			return nil, fmt.Errorf("tool %s: %w", t, err)
		}
		k.inputs[p] = d.Hash
	}
	args := append([]string(nil), a.Args...)
	for i, arg := range args {
		if p, ok := staged[arg]; ok {
			args[i] = p
		}
	}
	return args, nil
}

// treeFiles lists every file of a Tree with its path below the tree root.
func treeFiles(t *repb.Tree) ([]treeFile, error) {
	children := make(map[string]*repb.Directory, len(t.Children))
	for _, c := range t.Children {
		d, err := digestProto(c)
		if err != nil {
			return nil, err
		}
		children[cas.Key(d)] = c
	}
	var out []treeFile
	var walk func(dir *repb.Directory, prefix string) error
	walk = func(dir *repb.Directory, prefix string) error {
		for _, f := range dir.Files {
			out = append(out, treeFile{path.Join(prefix, f.Name), f.Digest, f.IsExecutable})
		}
		for _, sub := range dir.Directories {
			c, ok := children[cas.Key(sub.Digest)]
			if !ok {
				return fmt.Errorf("tree is missing directory %s", sub.Name)
			}
			if err := walk(c, path.Join(prefix, sub.Name)); err != nil {
				return err
			}
		}
		return nil
	}
	if t.Root == nil {
		return nil, nil
	}
	return out, walk(t.Root, "")
}

type treeFile struct {
	path   string
	digest *repb.Digest
	exec   bool
}
