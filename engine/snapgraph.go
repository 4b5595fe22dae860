package engine

import (
	"fmt"
	"strings"
	"time"
)

// encodeGraph writes the files, actions and targets of g that a build of
// labels uses: every action (by id), the targets asked for and those
// owning actions. A field added to Action or File must be added here and
// in decodeGraph; TestSnapshotCoversAction fails until it is.
func encodeGraph(e *snapEnc, g *Graph, labels []Label) {
	ids := map[*File]uint64{}
	var files []*File
	file := func(f *File) uint64 {
		if f == nil {
			return 0
		}
		if i, ok := ids[f]; ok {
			return i
		}
		files = append(files, f)
		ids[f] = uint64(len(files))
		return ids[f]
	}
	// Files first, numbered from 1 (0 is none), so that decoding can
	// link actions to them in one pass.
	for _, a := range g.Actions {
		for _, f := range a.Inputs {
			file(f)
		}
		for _, f := range a.Outputs {
			file(f)
		}
		file(a.Image)
		file(a.LayerOutput)
	}
	owners := map[Label]bool{}
	var targets []*Target
	addTarget := func(l Label) {
		if t := g.Targets[l]; t != nil && !owners[l] {
			owners[l] = true
			targets = append(targets, t)
			for _, f := range t.Files {
				file(f)
			}
		}
	}
	for _, l := range labels {
		addTarget(l)
	}
	for _, a := range g.Actions {
		addTarget(a.Owner)
	}
	e.uint(uint64(len(files)))
	for _, f := range files {
		e.str(f.Path)
		e.str(f.Owner.String())
		e.bool(f.Source)
		e.bool(f.Dir)
		e.bool(f.Executable)
	}
	fileList := func(fs []*File) {
		e.uint(uint64(len(fs)))
		for _, f := range fs {
			e.uint(ids[f])
		}
	}
	e.uint(uint64(len(g.Actions)))
	for _, a := range g.Actions {
		e.str(a.Owner.String())
		e.str(a.Mnemonic)
		e.strings(a.Args)
		e.sharedMap(a.Env)
		fileList(a.Inputs)
		fileList(a.Outputs)
		r := a.Resources
		e.float(r.CPU)
		e.int(r.Memory)
		e.int(int64(r.GPUs))
		e.int(r.GPUMemory)
		e.str(r.GPUModel)
		e.int(int64(a.Timeout))
		e.strings(a.Tools)
		e.strings(a.HostPaths)
		e.bool(a.AsRoot)
		e.sharedMap(a.Platform)
		e.uint(file(a.Image))
		e.bool(a.Network)
		e.strings(a.SecretEnv)
		e.uint(file(a.LayerOutput))
		e.str(a.Progress)
		e.bool(a.Tally)
		e.bool(a.IsWrite)
		e.bytes(a.Content)
	}
	e.uint(uint64(len(targets)))
	for _, t := range targets {
		e.str(t.Label.String())
		e.str(t.Pos)
		e.bool(t.Rule != nil)
		if t.Rule != nil {
			e.str(t.Rule.Kind())
			specs := t.Rule.Attrs()
			e.uint(uint64(len(specs)))
			for _, s := range specs {
				e.str(s.Name)
				e.str(FormatAttr(t.Attrs[s.Name]))
			}
		}
		fileList(t.Files)
	}
}

// decodeGraph reads what encodeGraph wrote into a graph rooted at root.
func decodeGraph(d *snapDec, root string) *Graph {
	g := &Graph{Root: root, Targets: map[Label]*Target{}, outputs: map[string]*Action{}, restored: true}
	label := d.label
	// One allocation for all files and one for all actions.
	files := make([]*File, d.count())
	fileVals := make([]File, len(files))
	for i := range files {
		fileVals[i] = File{Path: d.str(), Owner: label(), Source: d.bool(), Dir: d.bool(), Executable: d.bool()}
		files[i] = &fileVals[i]
	}
	file := func() *File {
		i := d.uint()
		if i == 0 || i > uint64(len(files)) {
			if i != 0 {
				d.bad = true
			}
			return nil
		}
		return files[i-1]
	}
	fileList := func() []*File {
		n := d.count()
		if n == 0 {
			return nil
		}
		out := make([]*File, n)
		for i := range out {
			if out[i] = file(); out[i] == nil {
				d.bad = true
			}
		}
		return out
	}
	g.Actions = make([]*Action, d.count())
	actVals := make([]Action, len(g.Actions))
	g.outputs = make(map[string]*Action, len(files))
	for i := range g.Actions {
		a := &actVals[i]
		*a = Action{id: i, Owner: label(), Mnemonic: d.str(), Args: d.strings(), Env: d.sharedMap()}
		a.Inputs = fileList()
		a.Outputs = fileList()
		a.Resources = Resources{CPU: d.float(), Memory: d.int(), GPUs: int(d.int()), GPUMemory: d.int(), GPUModel: d.str()}
		a.Timeout = time.Duration(d.int())
		a.Tools = d.strings()
		a.HostPaths = d.strings()
		a.AsRoot = d.bool()
		a.Platform = d.sharedMap()
		a.Image = file()
		a.Network = d.bool()
		a.SecretEnv = d.strings()
		a.LayerOutput = file()
		a.Progress = d.str()
		a.Tally = d.bool()
		a.IsWrite = d.bool()
		if c := d.raw(); len(c) > 0 {
			a.Content = []byte(c)
		}
		for _, o := range a.Outputs {
			if o.producer != nil {
				d.bad = true // one file, two producers: not what analysis makes
			}
			o.producer = a
			g.outputs[o.Path] = a
		}
		g.Actions[i] = a
	}
	n := d.count()
	g.Targets = make(map[Label]*Target, n)
	targetVals := make([]Target, n)
	rules := map[string]*restoredRule{} // one per kind and attribute names
	var names, values []string
	for i := 0; i < n && !d.bad; i++ {
		t := &targetVals[i]
		*t = Target{Label: label(), Pos: d.str(), analyzed: true}
		if d.bool() {
			kind := d.str()
			names, values = names[:0], values[:0]
			for k := d.count(); k > 0; k-- {
				names = append(names, d.str())
				values = append(values, d.str())
			}
			id := kind + "\x00" + strings.Join(names, "\x00")
			r := rules[id]
			if r == nil {
				r = &restoredRule{kind: kind}
				for _, name := range names {
					r.attrs = append(r.attrs, AttrSpec{Name: name, Type: AttrString})
				}
				rules[id] = r
			}
			t.Rule = r
			t.Attrs = make(map[string]any, len(names))
			for k, name := range names {
				t.Attrs[name] = values[k]
			}
		}
		t.Files = fileList()
		g.Targets[t.Label] = t
	}
	for _, a := range g.Actions {
		if t := g.Targets[a.Owner]; t != nil {
			t.Actions = append(t.Actions, a)
		} else {
			d.bad = true
		}
	}
	return g
}

// restoredRule stands for the rule of a target restored from a snapshot:
// its kind and its attributes as text, which is what builds and explain
// read of a target once it is analysed. It cannot be analysed again.
type restoredRule struct {
	kind  string
	attrs []AttrSpec
}

func (r *restoredRule) Kind() string      { return r.kind }
func (r *restoredRule) Attrs() []AttrSpec { return r.attrs }
func (r *restoredRule) Analyze(*Context) error {
	return fmt.Errorf("%s: a target restored from a build snapshot is analysed already", r.kind)
}
