package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
)

// Statuses of a re-executed action.
const (
	ReproIdentical = "identical"
	ReproDiffers   = "differs"
	ReproFailed    = "failed"
	ReproWrite     = "write" // a file write: nothing runs, identical by construction
)

// ReproAction is what re-executing one action showed.
type ReproAction struct {
	Action   string `json:"action"` // Action.Describe
	Label    string `json:"label"`
	Mnemonic string `json:"mnemonic"`
	Key      string `json:"key,omitempty"`
	Status   string `json:"status"`
	// File is the first output file whose bytes differ, in path order
	// (inside a directory output, by relative path); the digests are
	// "hash/size", "" where that side has no such file.
	File         string        `json:"file,omitempty"`
	CachedDigest string        `json:"cached_digest,omitempty"`
	RerunDigest  string        `json:"rerun_digest,omitempty"`
	Error        string        `json:"error,omitempty"`
	Duration     time.Duration `json:"duration_ns,omitempty"`
}

// ReproReport is what Repro found. Actions are sorted by Action.
type ReproReport struct {
	Actions    []*ReproAction `json:"actions"`
	Reexecuted int            `json:"reexecuted"`
	Identical  int            `json:"identical"`
	Differ     int            `json:"differ"`
	Failed     int            `json:"failed"`
	Writes     int            `json:"writes"`
	// DifferTargets are the labels of the targets with a differing
	// action, sorted.
	DifferTargets []string `json:"differ_targets,omitempty"`
}

// Repro re-executes every action that makes the targets' default outputs,
// bypassing the action cache, and compares its outputs with the cached
// result in o.Store, which must hold them all (the targets are built).
//
// Each action gets exactly the inputs of its cached run, so a
// non-deterministic action does not change what its dependents get, and
// they are compared too; the re-executions therefore all run at once,
// admitted as a build admits actions. o.Executor must read inputs from and
// write outputs to scratch: the blobs an action reads are staged there
// from o.Store, and nothing is written to o.Store's action cache or to
// lego-out. A failed re-execution is reported, not returned; the error is
// for an action that is not in the cache, or an interrupt.
func Repro(ctx context.Context, g *Graph, targets []*Target, o Options, scratch cas.Local) (*ReproReport, error) {
	b := newBuilder(ctx, g, o)
	defer b.cancel()
	o = b.o
	rep := &ReproReport{}
	type job struct {
		n *node
		k *keyed
		r *ReproAction
	}
	var jobs []job
	for _, n := range b.plan(targets) {
		a := n.a
		r := &ReproAction{Action: a.Describe(), Label: a.Owner.String(), Mnemonic: a.Mnemonic}
		rep.Actions = append(rep.Actions, r)
		k, err := b.reference(n)
		if err != nil {
			return nil, err
		}
		if k == nil {
			r.Status = ReproWrite
			rep.Writes++
			continue
		}
		r.Key = k.key.Hash
		jobs = append(jobs, job{n, k, r})
	}

	dir, err := scratch.TempDir("stage-")
	if err != nil {
		return nil, err
	}
	defer cas.RemoveAll(dir)
	st := &stager{main: o.Store, scratch: scratch, dir: dir}
	o.Listener.Event(&Event{Type: EvBuildStarted, Time: time.Now(), Total: len(jobs)})
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.rerun(j.n, j.k, st, scratch, j.r)
		}()
	}
	wg.Wait()

	sort.Slice(rep.Actions, func(i, j int) bool { return rep.Actions[i].Action < rep.Actions[j].Action })
	differ := map[string]bool{}
	for _, r := range rep.Actions {
		switch r.Status {
		case ReproIdentical:
			rep.Identical++
		case ReproDiffers:
			rep.Differ++
			if !differ[r.Label] {
				differ[r.Label] = true
				rep.DifferTargets = append(rep.DifferTargets, r.Label)
			}
		case ReproFailed:
			rep.Failed++
		}
	}
	rep.Reexecuted = len(jobs)
	sort.Strings(rep.DifferTargets)
	ok := rep.Failed == 0 && ctx.Err() == nil
	o.Listener.Event(&Event{Type: EvBuildFinished, Time: time.Now(), Success: &ok, Total: len(jobs),
		Executed: rep.Identical + rep.Differ, Failed: rep.Failed})
	if ctx.Err() != nil {
		return rep, errors.New("repro interrupted")
	}
	return rep, nil
}

// reference sets n.outs to the cached outputs of n's action and returns
// its key, or nil for a file write.
func (b *builder) reference(n *node) (*keyed, error) {
	a := n.a
	if a.IsWrite {
		out := a.Outputs[0]
		n.outs = map[string]*artifact{out.Path: {digest: cas.DigestOf(a.Content), exec: out.Executable}}
		return nil, nil
	}
	k, err := computeKey(a, func(f *File) (*artifact, error) { return b.input(n, f) }, b.tool, b.o.Store.Get, b.o.GPUClass, b.o.Sandbox)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Describe(), err)
	}
	if n.outs, _, _ = b.lookup(a, k.key); n.outs == nil {
		return nil, fmt.Errorf("%s: no cached result to compare with (was the build interrupted, or the workspace changed since?)", a.Describe())
	}
	return k, nil
}

// rerun re-executes one action and fills in r.
func (b *builder) rerun(n *node, k *keyed, st *stager, scratch cas.Local, r *ReproAction) {
	a := n.a
	start := time.Now()
	res, err := b.reexecute(n, k, st, scratch)
	var outs map[string]*artifact
	if err == nil {
		outs, err = resultOutputs(scratch, a, res)
	}
	if err == nil {
		var cached, rerun *repb.Digest
		var differs bool
		r.File, cached, rerun, differs, err = firstDiff(a, n.outs, outs)
		r.Status = ReproIdentical
		if differs {
			r.Status = ReproDiffers
			r.CachedDigest, r.RerunDigest = digestKey(cached), digestKey(rerun)
		}
	}
	r.Duration = time.Since(start)
	if err != nil {
		if b.ctx.Err() != nil {
			err = context.Canceled
		}
		r.Status, r.Error = ReproFailed, err.Error()
		b.o.Listener.Event(&Event{Type: EvActionFailed, Time: time.Now(), Label: r.Label,
			Action: r.Action, Mnemonic: a.Mnemonic, Key: k.key.Hash, Error: r.Error})
		return
	}
	b.o.Listener.Event(&Event{Type: EvActionExecuted, Time: time.Now(), Label: r.Label,
		Action: r.Action, Mnemonic: a.Mnemonic, Key: k.key.Hash, Duration: r.Duration})
}

// reexecute runs the action of n with the inputs of its cached run; its
// outputs and logs land in scratch.
func (b *builder) reexecute(n *node, k *keyed, st *stager, scratch cas.Local) (*repb.ActionResult, error) {
	a := n.a
	// Staging reads every input once: as many at a time as a build
	// checks the cache.
	if err := acquire(b.ctx, b.check); err != nil {
		return nil, err
	}
	err := b.stage(n, k, st)
	<-b.check
	if err != nil {
		return nil, fmt.Errorf("%s: staging inputs: %w", a.Describe(), err)
	}
	var estimate time.Duration
	if b.o.History != nil {
		estimate = b.o.History.lastDuration(b.recordOf(a, k))
	}
	req := request(a, k, estimate)
	free, err := b.admit(a, req)
	if err != nil {
		return nil, err
	}
	defer free()
	b.o.Listener.Event(&Event{Type: EvActionStarted, Time: time.Now(), Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: k.key.Hash})
	res, err := b.o.Executor.Execute(b.ctx, req)
	if err != nil {
		st.dropCorrupt(k)
		return nil, fmt.Errorf("%s: %w\n  command: %s%s", a.Describe(), err, shellQuote(a.Args), stderrTail(scratch, res))
	}
	if res.ExitCode != 0 {
		return nil, failure(scratch, a, res)
	}
	return res, nil
}

// stage puts every file of the action's input root into the scratch
// store, and the blobs of the images it runs in or drives.
func (b *builder) stage(n *node, k *keyed, st *stager) error {
	seen := map[string]bool{}
	var walk func(d *repb.Digest) error
	walk = func(d *repb.Digest) error {
		key := cas.Key(d)
		if seen[key] {
			return nil
		}
		seen[key] = true
		dir, ok := k.dirs[key]
		if !ok {
			if d.SizeBytes == 0 {
				return nil // the empty Directory
			}
			return fmt.Errorf("input directory %s is not in the action's input root", key)
		}
		for _, f := range dir.Files {
			if err := st.blob(f.Digest); err != nil {
				return err
			}
		}
		for _, sub := range dir.Directories {
			if err := walk(sub.Digest); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(k.action.InputRootDigest); err != nil {
		return err
	}
	for _, f := range n.a.Inputs {
		info := ImageOf(b.g.Targets[f.Owner])
		if info == nil || info.Manifest == nil || info.Manifest.Path != f.Path {
			continue
		}
		art, err := b.input(n, f)
		if err != nil {
			return err
		}
		if err := st.image(art.digest); err != nil {
			return fmt.Errorf("image %s: %w", f.ShortPath(), err)
		}
	}
	return nil
}

// firstDiff finds the first output file, in path order, whose bytes differ
// between the cached outputs and the re-executed ones; inside a directory
// output, files are taken by relative path. differs is false when every
// output is identical.
func firstDiff(a *Action, cached, rerun map[string]*artifact) (file string, c, r *repb.Digest, differs bool, err error) {
	paths := make([]string, 0, len(a.Outputs))
	for _, o := range a.Outputs {
		paths = append(paths, o.Path)
	}
	sort.Strings(paths)
	for _, p := range paths {
		ca, ra := cached[p], rerun[p]
		if ca == nil || ra == nil {
			return "", nil, nil, false, fmt.Errorf("output %s is missing from a result", p)
		}
		if ca.tree == nil || ra.tree == nil {
			if ca.tree != nil || ra.tree != nil {
				return p, ca.digest, ra.digest, true, nil // a file one time, a directory the other
			}
			if ca.digest.Hash != ra.digest.Hash {
				return p, ca.digest, ra.digest, true, nil
			}
			continue
		}
		// Equal root Directories hold equal files, whatever the Tree
		// messages' encoding.
		cd, err := digestProto(ca.tree.Root)
		if err != nil {
			return "", nil, nil, false, err
		}
		rd, err := digestProto(ra.tree.Root)
		if err != nil {
			return "", nil, nil, false, err
		}
		if cd.Hash == rd.Hash {
			continue
		}
		cf, err := sortedTreeFiles(ca.tree)
		if err != nil {
			return "", nil, nil, false, err
		}
		rf, err := sortedTreeFiles(ra.tree)
		if err != nil {
			return "", nil, nil, false, err
		}
		for i, j := 0, 0; i < len(cf) || j < len(rf); i, j = i+1, j+1 {
			switch {
			case j == len(rf) || i < len(cf) && cf[i].path < rf[j].path:
				return p + "/" + cf[i].path, cf[i].digest, nil, true, nil
			case i == len(cf) || rf[j].path < cf[i].path:
				return p + "/" + rf[j].path, nil, rf[j].digest, true, nil
			case cf[i].digest.Hash != rf[j].digest.Hash:
				return p + "/" + cf[i].path, cf[i].digest, rf[j].digest, true, nil
			}
		}
		// Same files: a symlink, an empty directory or a mode differs.
		return p, cd, rd, true, nil
	}
	return "", nil, nil, false, nil
}

func sortedTreeFiles(t *repb.Tree) ([]treeFile, error) {
	fs, err := treeFiles(t)
	sort.Slice(fs, func(i, j int) bool { return fs[i].path < fs[j].path })
	return fs, err
}

func digestKey(d *repb.Digest) string {
	if d == nil {
		return ""
	}
	return cas.Key(d)
}

// stager puts the blobs that re-executions read into the scratch store,
// each once: a hard link of the main store's blob (the scratch store lives
// on its filesystem), hashed on the way in like any blob read.
type stager struct {
	main    cas.Store
	scratch cas.Local
	dir     string // for the links, inside scratch
	seq     atomic.Int64
	blobs   sync.Map // hash -> *stageOnce
}

type stageOnce struct {
	once sync.Once
	err  error
}

func (s *stager) blob(d *repb.Digest) error {
	v, _ := s.blobs.LoadOrStore(d.Hash, &stageOnce{})
	o := v.(*stageOnce)
	o.once.Do(func() { o.err = s.copy(d) })
	return o.err
}

func (s *stager) copy(d *repb.Digest) error {
	if s.scratch.Has(d) {
		return nil
	}
	src, err := s.main.BlobPath(d, false)
	if err != nil {
		return err
	}
	var got *repb.Digest
	tmp := filepath.Join(s.dir, strconv.FormatInt(s.seq.Add(1), 10))
	if os.Link(src, tmp) == nil {
		got, err = s.scratch.IngestFile(tmp)
	} else {
		got, err = s.scratch.PutFile(src) // another filesystem, or the link limit
	}
	if err != nil {
		return err
	}
	if got.Hash != d.Hash || got.SizeBytes != d.SizeBytes {
		return fmt.Errorf("%w: blob %s of the cache hashes to %s", cas.ErrCorrupt, cas.Key(d), cas.Key(got))
	}
	return nil
}

// dropCorrupt handles an action that wrote through the hard link of an
// input: the executor drops the scratch store's name of the blob, but the
// main store's name is the same inode. Get removes a blob whose content
// no longer has its digest, as the executor would have in a build.
func (s *stager) dropCorrupt(k *keyed) {
	for _, dir := range k.dirs {
		for _, f := range dir.Files {
			if _, staged := s.blobs.Load(f.Digest.Hash); staged && !s.scratch.Has(f.Digest) {
				s.main.Get(f.Digest)
			}
		}
	}
}

// image stages the manifest, config and layers of the image whose
// ImageManifest file (see ImageInfo) has digest d: a container executor or
// a session reads them from the store it is given.
func (s *stager) image(d *repb.Digest) error {
	b, err := s.main.Get(d)
	if err != nil {
		return err
	}
	var im ImageManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return err
	}
	md, err := ociDigest(im.Digest, im.Size)
	if err != nil {
		return err
	}
	mb, err := s.main.Get(md)
	if err != nil {
		return err
	}
	type blob struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}
	var m struct {
		Config blob   `json:"config"`
		Layers []blob `json:"layers"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", im.Digest, err)
	}
	if err := s.blob(md); err != nil {
		return err
	}
	for _, l := range append([]blob{m.Config}, m.Layers...) {
		ld, err := ociDigest(l.Digest, l.Size)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", im.Digest, err)
		}
		if err := s.blob(ld); err != nil {
			return err
		}
	}
	return nil
}

func ociDigest(s string, size int64) (*repb.Digest, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	d := &repb.Digest{Hash: h, SizeBytes: size}
	if !ok || cas.Validate(d) != nil {
		return nil, fmt.Errorf("not a sha256 digest: %q", s)
	}
	return d, nil
}

// Print writes one line per re-executed action, then the summary.
func (rep *ReproReport) Print(w io.Writer) {
	for _, r := range rep.Actions {
		switch r.Status {
		case ReproWrite:
			continue
		case ReproDiffers:
			fmt.Fprintf(w, "%-9s %s: first differing file %s (cached %s, re-executed %s)\n",
				r.Status, r.Action, r.File, orAbsent(r.CachedDigest), orAbsent(r.RerunDigest))
		case ReproFailed:
			msg, _, _ := strings.Cut(strings.TrimPrefix(r.Error, r.Action+": "), "\n")
			fmt.Fprintf(w, "%-9s %s: %s\n", r.Status, r.Action, msg)
		default:
			fmt.Fprintf(w, "%-9s %s\n", r.Status, r.Action)
		}
	}
	fmt.Fprintf(w, "repro: %d actions re-executed: %d identical, %d differ", rep.Reexecuted, rep.Identical, rep.Differ)
	if len(rep.DifferTargets) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(rep.DifferTargets, ", "))
	}
	if rep.Failed > 0 {
		fmt.Fprintf(w, ", %d failed", rep.Failed)
	}
	if rep.Writes > 0 {
		fmt.Fprintf(w, "; %d file writes not re-executed", rep.Writes)
	}
	fmt.Fprintln(w)
}

func orAbsent(d string) string {
	if d == "" {
		return "absent"
	}
	return d
}

// WriteJSON writes the report to path (--report_json).
func (rep *ReproReport) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--report_json: %w", err)
	}
	return nil
}
