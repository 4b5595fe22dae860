package engine

import (
	"fmt"
	"time"
)

// The graph section of a snapshot is decoded in part: a build after an
// edit needs every action's place in the graph (owner, mnemonic, inputs,
// outputs, resources, tools) but the rest (command, environment, platform,
// content) only of the few actions it keys and runs, and a target's
// attributes only for explain's record of an action that ran. So:
//
//	section: strings | files | actions | targets
//	strings: count, then each as length and bytes; everything after
//	         names a string by its index, so any part can be read alone
//	action:  header | length of body | body, decoded by Graph.complete;
//	         lists and maps many actions share (tools, environment,
//	         platform) are in the header, each written once
//	target:  header | length of attributes | attributes, by attrText
//
// A field added to Action or File must be added here;
// TestSnapshotCoversAction fails until it is.

// graphEnc numbers the strings of a graph section as it writes them.
type graphEnc struct {
	snapEnc
	order []string
}

func (e *graphEnc) ref(s string) {
	i, ok := e.strs[s]
	if !ok {
		i = uint64(len(e.order))
		e.strs[s] = i
		e.order = append(e.order, s)
	}
	e.uint(i)
}

func (e *graphEnc) refs(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.ref(s)
	}
}

func (e *graphEnc) refMap(m map[string]string) {
	e.uint(uint64(len(m)))
	for _, k := range sortedKeys(m, nil) {
		e.ref(k)
		e.ref(m[k])
	}
}

// shared writes a list or map seen before as its number + 1, a new one as
// 0 and its elements: thousands of actions have one environment and one
// tool. Decoded, they are one value; actions do not change theirs.
func (e *graphEnc) shared(key string, write func()) {
	if i, ok := e.maps[key]; ok {
		e.uint(i + 1)
		return
	}
	if e.maps == nil {
		e.maps = map[string]uint64{}
	}
	e.maps[key] = uint64(len(e.maps))
	e.uint(0)
	write()
}

func mapKey(m map[string]string) string {
	k := &snapEnc{strs: map[string]uint64{}}
	k.strMap(m)
	return "m" + string(k.b)
}

func listKey(ss []string) string {
	k := &snapEnc{strs: map[string]uint64{}}
	k.strings(ss)
	return "l" + string(k.b)
}

// sub writes what fill writes as a length-prefixed part, read out of
// order later: it may name strings, but shares no list or map.
func (e *graphEnc) sub(fill func(*graphEnc)) {
	part := &graphEnc{snapEnc: snapEnc{strs: e.strs}, order: e.order}
	fill(part)
	e.order = part.order
	e.bytes(part.b)
}

// encodeGraph writes the files, actions and targets of g that a build of
// labels uses: every action (by id), the targets asked for and those
// owning actions.
func encodeGraph(g *Graph, labels []Label) []byte {
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

	e := &graphEnc{snapEnc: snapEnc{strs: map[string]uint64{}}}
	e.uint(uint64(len(files)))
	for _, f := range files {
		e.ref(f.Path)
		e.ref(f.Owner.String())
		e.uint(flags(f.Source, f.Dir, f.Executable))
	}
	fileList := func(e *graphEnc, fs []*File) {
		e.uint(uint64(len(fs)))
		for _, f := range fs {
			e.uint(ids[f])
		}
	}
	e.uint(uint64(len(g.Actions)))
	for _, a := range g.Actions {
		e.ref(a.Owner.String())
		e.ref(a.Mnemonic)
		fileList(e, a.Inputs)
		fileList(e, a.Outputs)
		e.uint(file(a.Image))
		e.uint(file(a.LayerOutput))
		e.uint(flags(a.AsRoot, a.Network, a.Tally, a.IsWrite))
		r := a.Resources
		e.float(r.CPU)
		e.int(r.Memory)
		e.int(int64(r.GPUs))
		e.int(r.GPUMemory)
		e.ref(r.GPUModel)
		e.shared(listKey(a.Tools), func() { e.refs(a.Tools) })
		e.shared(mapKey(a.Env), func() { e.refMap(a.Env) })
		e.shared(mapKey(a.Platform), func() { e.refMap(a.Platform) })
		e.sub(func(b *graphEnc) {
			b.refs(a.Args)
			b.int(int64(a.Timeout))
			b.refs(a.HostPaths)
			b.refs(a.SecretEnv)
			b.ref(a.Progress)
			b.bytes(a.Content)
		})
	}
	e.uint(uint64(len(targets)))
	for _, t := range targets {
		e.ref(t.Label.String())
		e.ref(t.Pos)
		kind := ""
		if t.Rule != nil {
			kind = t.Rule.Kind()
		}
		e.ref(kind)
		fileList(e, t.Files)
		e.sub(func(b *graphEnc) {
			if t.Rule == nil {
				b.uint(0)
				return
			}
			specs := t.Rule.Attrs()
			b.uint(uint64(len(specs)))
			for _, s := range specs {
				b.ref(s.Name)
				b.ref(FormatAttr(t.Attrs[s.Name]))
			}
		})
	}
	out := &snapEnc{}
	out.uint(uint64(len(e.order)))
	for _, s := range e.order {
		out.bytes([]byte(s))
	}
	return append(out.b, e.b...)
}

func flags(bs ...bool) uint64 {
	var v uint64
	for i, b := range bs {
		if b {
			v |= 1 << i
		}
	}
	return v
}

// graphDec reads a graph section; the strings are slices of it.
type graphDec struct {
	snapDec
	shared []any    // the shared lists and maps, by number
	parsed []*Label // labels parsed, by string number
}

func (d *graphDec) ref() string {
	i := d.uint()
	if i >= uint64(len(d.strs)) {
		d.fail()
		return ""
	}
	return d.strs[i]
}

func (d *graphDec) refs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.ref()
	}
	return out
}

func (d *graphDec) refMap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k := d.ref()
		m[k] = d.ref()
	}
	return m
}

// sharedValue reads what graphEnc.shared wrote, with read for a new one.
func (d *graphDec) sharedValue(read func() any) any {
	i := d.uint()
	if i > 0 {
		if i-1 >= uint64(len(d.shared)) {
			d.fail()
			return nil
		}
		return d.shared[i-1]
	}
	v := read()
	d.shared = append(d.shared, v)
	return v
}

// label reads a label, parsing each distinct one once: by the number of
// its string, which costs no hashing.
func (d *graphDec) label() Label {
	i := d.uint()
	if i >= uint64(len(d.strs)) {
		d.fail()
		return Label{}
	}
	if p := d.parsed[i]; p != nil {
		return *p
	}
	l, err := ParseLabel(d.strs[i], "")
	if err != nil {
		d.fail()
	}
	d.parsed[i] = &l
	return l
}

// restoredGraph is what a graph decoded from a snapshot keeps to decode
// the rest of an action or target when it is needed.
type restoredGraph struct {
	strs    []string
	section string
}

// decodeGraph reads a graph section into a graph rooted at root, leaving
// action bodies and target attributes to complete and attrText.
func decodeGraph(section, root string) *Graph {
	d := &graphDec{snapDec: snapDec{s: section}}
	d.strs = make([]string, d.count())
	for i := range d.strs {
		d.strs[i] = d.raw()
	}
	d.parsed = make([]*Label, len(d.strs))
	g := &Graph{Root: root, Targets: map[Label]*Target{}, restored: true}
	files := make([]*File, d.count())
	fileVals := make([]File, len(files))
	for i := range files {
		fileVals[i] = File{Path: d.ref(), Owner: d.label()}
		f := d.uint()
		fileVals[i].Source, fileVals[i].Dir, fileVals[i].Executable = f&1 != 0, f&2 != 0, f&4 != 0
		files[i] = &fileVals[i]
	}
	file := func() *File {
		i := d.uint()
		if i == 0 || i > uint64(len(files)) {
			if i != 0 {
				d.fail()
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
				d.fail()
			}
		}
		return out
	}
	base := len(section)
	g.Actions = make([]*Action, d.count())
	actVals := make([]Action, len(g.Actions))
	g.outputs = make(map[string]*Action, len(files))
	for i := range g.Actions {
		a := &actVals[i]
		*a = Action{id: i, Owner: d.label(), Mnemonic: d.ref()}
		a.Inputs = fileList()
		a.Outputs = fileList()
		a.Image = file()
		a.LayerOutput = file()
		f := d.uint()
		a.AsRoot, a.Network, a.Tally, a.IsWrite = f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0
		a.Resources = Resources{CPU: d.float(), Memory: d.int(), GPUs: int(d.int()), GPUMemory: d.int(), GPUModel: d.ref()}
		a.Tools, _ = d.sharedValue(func() any { return d.refs() }).([]string)
		a.Env, _ = d.sharedValue(func() any { return d.refMap() }).(map[string]string)
		a.Platform, _ = d.sharedValue(func() any { return d.refMap() }).(map[string]string)
		a.body = base - len(d.s) + 1
		d.raw() // the body, for complete
		for _, o := range a.Outputs {
			if o.producer != nil {
				d.fail() // one file, two producers: not what analysis makes
			}
			o.producer = a
			g.outputs[o.Path] = a
		}
		g.Actions[i] = a
	}
	n := d.count()
	g.Targets = make(map[Label]*Target, n)
	targetVals := make([]Target, n)
	rules := map[string]*restoredRule{}
	for i := 0; i < n && !d.bad; i++ {
		t := &targetVals[i]
		*t = Target{Label: d.label(), Pos: d.ref(), analyzed: true}
		if kind := d.ref(); kind != "" {
			r := rules[kind]
			if r == nil {
				r = &restoredRule{kind: kind}
				rules[kind] = r
			}
			t.Rule = r
		}
		t.Files = fileList()
		t.attrAt = base - len(d.s) + 1
		d.raw()
		g.Targets[t.Label] = t
	}
	for _, a := range g.Actions {
		if t := g.Targets[a.Owner]; t != nil {
			t.Actions = append(t.Actions, a)
		} else {
			d.fail()
		}
	}
	if d.bad || len(d.s) != 0 {
		return nil
	}
	g.snap = &restoredGraph{strs: d.strs, section: section}
	return g
}

// complete decodes the rest of a restored action: what keying and running
// it read. Each action is completed by the one goroutine that runs it.
func (g *Graph) complete(a *Action) error {
	if g.snap == nil || a.body == 0 {
		return nil
	}
	d := g.snap.at(a.body)
	body := d.raw()
	d = &graphDec{snapDec: snapDec{s: body, strs: g.snap.strs}}
	a.Args = d.refs()
	a.Timeout = time.Duration(d.int())
	a.HostPaths = d.refs()
	a.SecretEnv = d.refs()
	a.Progress = d.ref()
	if c := d.raw(); len(c) > 0 {
		a.Content = []byte(c)
	}
	if d.bad || len(d.s) != 0 {
		return fmt.Errorf("%s: the build snapshot's record of it is damaged", a.Describe())
	}
	a.body = 0
	return nil
}

// at is a decoder at offset off+1 of the section.
func (r *restoredGraph) at(off int) *graphDec {
	return &graphDec{snapDec: snapDec{s: r.section[off-1:], strs: r.strs}}
}

// attrText is the target's attributes as text, for explain's records:
// from the rule for an analysed target, from the snapshot for a restored one.
func (g *Graph) attrText(t *Target) map[string]string {
	if t == nil || t.Rule == nil {
		return nil
	}
	out := map[string]string{}
	if g.snap != nil && t.attrAt != 0 {
		d := g.snap.at(t.attrAt)
		d = &graphDec{snapDec: snapDec{s: d.raw(), strs: g.snap.strs}}
		for n := d.count(); n > 0; n-- {
			k := d.ref()
			out[k] = d.ref()
		}
		return out
	}
	for _, s := range t.Rule.Attrs() {
		out[s.Name] = FormatAttr(t.Attrs[s.Name])
	}
	return out
}

// restoredRule stands for the rule of a target restored from a snapshot:
// its kind; its attributes are read as text (attrText). It cannot be
// analysed again.
type restoredRule struct {
	kind string
}

func (r *restoredRule) Kind() string      { return r.kind }
func (r *restoredRule) Attrs() []AttrSpec { return nil }
func (r *restoredRule) Analyze(*Context) error {
	return fmt.Errorf("%s: a target restored from a build snapshot is analysed already", r.kind)
}
