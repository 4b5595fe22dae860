package engine

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AttrType is the type of a rule attribute.
type AttrType int

const (
	AttrString AttrType = iota
	AttrInt
	AttrBool
	AttrLabel
	AttrLabelList
	AttrStringList
	AttrStringDict
	AttrLabelDict // string keys, label values (e.g. an image's files)
	AttrIntList
	AttrLabelDictOrdered // string keys, label values, in the order written (e.g. a table's rows)
)

var attrTypeNames = [...]string{"string", "int", "bool", "label", "label_list", "string_list", "dict", "string_keyed_label_dict", "int_list", "ordered_label_dict"}

func (t AttrType) String() string { return attrTypeNames[t] }

// AttrSpec declares one attribute of a rule. Values held in Target.Attrs
// have the Go types string, int64, bool, Label, []Label, []string,
// map[string]string, map[string]Label, []int64 and []KeyedLabel.
type AttrSpec struct {
	Name      string
	Type      AttrType
	Default   any
	Mandatory bool
	Doc       string
}

// ZeroValue is the value an optional attribute without a default takes.
func (s AttrSpec) ZeroValue() any {
	if s.Default != nil {
		return s.Default
	}
	switch s.Type {
	case AttrString:
		return ""
	case AttrInt:
		return int64(0)
	case AttrBool:
		return false
	case AttrLabel:
		return Label{}
	case AttrLabelList:
		return []Label(nil)
	case AttrStringList:
		return []string(nil)
	case AttrLabelDict:
		return map[string]Label(nil)
	case AttrIntList:
		return []int64(nil)
	case AttrLabelDictOrdered:
		return []KeyedLabel(nil)
	}
	return map[string]string(nil)
}

// KeyedLabel is one entry of an AttrLabelDictOrdered value: a Starlark
// dict keeps its keys in the order written, a Go map would not.
type KeyedLabel struct {
	Key   string
	Label Label
}

// Rule is a rule class: built in (rules/) or defined in Starlark with rule().
// The engine knows no rule: it only calls Analyze.
type Rule interface {
	Kind() string
	Attrs() []AttrSpec
	Analyze(ctx *Context) error
}

// Target is a rule instance declared in a BUILD file, or a source file.
type Target struct {
	Label Label
	Rule  Rule // nil for a source file
	Attrs map[string]any
	Pos   string // file:line:col of the declaration

	// Set by analysis.
	Files     []*File
	Providers map[any]any
	Actions   []*Action
	analyzed  bool
	attrAt    int // a restored target's attributes in its snapshot (attrText)
}

// Kind is the rule class name, or "source file".
func (t *Target) Kind() string {
	if t.Rule == nil {
		return "source file"
	}
	return t.Rule.Kind()
}

// Deps lists the labels the target's attributes name, in attribute order.
func (t *Target) Deps() []Label {
	if t.Rule == nil {
		return nil
	}
	var out []Label
	for _, s := range t.Rule.Attrs() {
		out = append(out, AttrLabels(t.Attrs[s.Name])...)
	}
	return out
}

// AttrLabels lists the labels an attribute value names, in a stable order.
func AttrLabels(v any) []Label {
	switch v := v.(type) {
	case Label:
		if v != (Label{}) {
			return []Label{v}
		}
	case []Label:
		return v
	case []KeyedLabel:
		out := make([]Label, len(v))
		for i, e := range v {
			out[i] = e.Label
		}
		return out
	case map[string]Label:
		out := make([]Label, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out = append(out, v[k])
		}
		return out
	}
	return nil
}

// FormatAttr renders an attribute value for query and explain output.
func FormatAttr(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []Label:
		s := make([]string, len(v))
		for i, l := range v {
			s[i] = l.String()
		}
		return "[" + strings.Join(s, ", ") + "]"
	case []int64:
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.FormatInt(n, 10)
		}
		return "[" + strings.Join(s, ", ") + "]"
	case []KeyedLabel:
		s := make([]string, len(v))
		for i, e := range v {
			s[i] = fmt.Sprintf("%q: %q", e.Key, e.Label.String())
		}
		return "{" + strings.Join(s, ", ") + "}"
	case map[string]Label:
		var b strings.Builder
		b.WriteString("{")
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: %q", k, v[k].String())
		}
		b.WriteString("}")
		return b.String()
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: %q", k, v[k])
		}
		b.WriteString("}")
		return b.String()
	}
	return fmt.Sprint(v)
}

// Package is one loaded BUILD file.
type Package struct {
	Name      string
	BuildFile string // workspace-relative
	Targets   map[string]*Target
	Order     []string        // declaration order
	Files     map[string]bool // package-relative source files that exist (lazily filled)
}

// File is an artifact: a source file or an action output. Path is relative
// to the exec root, which mirrors the workspace: sources at pkg/name,
// outputs at lego-out/pkg/name.
type File struct {
	Path       string
	Owner      Label
	Source     bool
	Dir        bool
	Executable bool
	producer   *Action
}

// OutDir is the directory, relative to the workspace and the exec root,
// where outputs live.
const OutDir = "lego-out"

// ShortPath is the path relative to the output or source root.
func (f *File) ShortPath() string {
	return strings.TrimPrefix(f.Path, OutDir+"/")
}

// Resources an action needs while it runs.
type Resources struct {
	CPU       float64 // cores
	Memory    int64   // bytes
	GPUs      int
	GPUMemory int64  // bytes per GPU
	GPUModel  string // model class, e.g. "H100"; "" = the machine's
}

// Action is one command (or file write) that a target's analysis produced.
type Action struct {
	Owner     Label
	Mnemonic  string
	Args      []string
	Env       map[string]string
	Inputs    []*File
	Outputs   []*File
	Resources Resources
	Timeout   time.Duration
	// Tools are host executables the command runs. They are staged in the
	// exec root (under ToolsDir) and keyed by digest; the arguments that
	// name one are rewritten to its staged path.
	Tools []string
	// HostPaths are host paths a host action reads that are not inputs
	// (a repository fetched from a file:// URL). The sandbox shows them
	// read-only; they are named in the key, their contents are not.
	HostPaths []string
	// AsRoot runs a host action as root, with root's capabilities, in
	// its sandbox: lego's own debootstrap, which makes device nodes and
	// chroots. Only Go rules set it; BUILD files cannot. It is in the key.
	AsRoot bool
	// Platform holds extra platform properties.
	Platform map[string]string
	// Image is the manifest file of the OCI image the action runs in (see
	// ImageInfo), or nil for a host process. Its digest, not the host's
	// tools, goes into the key.
	Image *File
	// Network lets the action use the network (containers have none
	// otherwise). It is part of the key.
	Network bool
	// SecretEnv names variables of lego's environment passed to the
	// action when it runs (API keys). Their names are in the key; their
	// values are in no key, log, event or store entry.
	SecretEnv []string
	// LayerOutput, one of Outputs, receives the filesystem changes the
	// action made in its container, as an image layer (image run steps).
	LayerOutput *File
	// Progress is what the progress display shows while the action runs
	// (ctx.actions.run's progress_message), with Bazel's %{label},
	// %{input} and %{output}; "" shows Describe. It is not in the key.
	Progress string
	// Tally marks an action that is one of many alike (a task instance's
	// judge) whose stdout ends with a tally line (executors.TallyLine):
	// the engine emits its word as an EvTally event on Owner, whether the
	// action ran or was a cache hit, and counts it in Summary.Tallies.
	// It is not in the key: it changes what is shown, not what runs.
	Tally bool

	// A write action: Content is the single output's bytes, nothing runs.
	IsWrite bool
	Content []byte

	id   int
	body int // a restored action's rest in its snapshot (Graph.complete)
}

// ImageInfo is the provider of image targets: Manifest is a small JSON
// file {"digest": "sha256:…", "size": N} naming the image's manifest;
// Layout is the OCI image layout directory whose blobs hold the image.
type ImageInfo struct {
	Manifest *File
	Layout   *File
}

type imageInfoKey struct{}

// ImageOf returns the ImageInfo a target provides, or nil.
func ImageOf(t *Target) *ImageInfo {
	if t == nil {
		return nil
	}
	v, _ := t.Providers[imageInfoKey{}].(*ImageInfo)
	return v
}

// SetImage makes the target provide info.
func (t *Target) SetImage(info *ImageInfo) {
	if t.Providers == nil {
		t.Providers = map[any]any{}
	}
	t.Providers[imageInfoKey{}] = info
}

// ImageManifest is the content of an ImageInfo's Manifest file.
type ImageManifest struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// ProgressMessage is Progress with its placeholders filled in, or "".
func (a *Action) ProgressMessage() string {
	if a.Progress == "" {
		return ""
	}
	first := func(fs []*File) string {
		if len(fs) == 0 {
			return ""
		}
		return fs[0].ShortPath()
	}
	return strings.NewReplacer("%{label}", a.Owner.String(), "%{input}", first(a.Inputs), "%{output}", first(a.Outputs)).Replace(a.Progress)
}

// Describe is a short human name for the action.
func (a *Action) Describe() string {
	out := ""
	if len(a.Outputs) > 0 {
		out = " " + a.Outputs[0].ShortPath()
	}
	return a.Owner.String() + " " + a.Mnemonic + out
}
