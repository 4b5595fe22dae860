package engine

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
)

// input returns the built state of an input file.
func (b *builder) input(n *node, f *File) (*artifact, error) {
	if p := f.producer; p != nil {
		for _, d := range n.deps {
			if d.a == p {
				if art := d.outs[f.Path]; art != nil {
					if d.prior {
						return art, b.restock(f, art)
					}
					return art, nil
				}
			}
		}
		return nil, fmt.Errorf("input %s was not built", f.Path)
	}
	v, _ := b.sources.LoadOrStore(f.Path, &sourceOnce{})
	s := v.(*sourceOnce)
	s.once.Do(func() {
		abs := filepath.Join(b.g.Root, filepath.FromSlash(f.Path))
		d, exec, err := b.digestFile(s, f.Path, abs)
		if err != nil {
			s.err = fmt.Errorf("source %s: %w", f.Path, err)
			return
		}
		if !b.o.Store.Has(d) {
			if _, err := b.o.Store.PutFile(abs); err != nil {
				s.err = fmt.Errorf("source %s: %w", f.Path, err)
				return
			}
		}
		s.art = &artifact{digest: d, exec: exec}
	})
	return s.art, s.err
}

// restock makes sure the store holds the blobs of art, an output taken
// from the prior snapshot as it is in lego-out, which the action about to
// run is staged from: the store may have lost one since (an evicted
// corrupt copy) while lego-out kept its own link. A lost one is stored
// again from lego-out, whose bytes must still be art's.
func (b *builder) restock(f *File, art *artifact) error {
	type file struct {
		path string
		d    *repb.Digest
	}
	files := []file{{f.Path, art.digest}}
	if art.tree != nil {
		tfs, err := treeFiles(art.tree)
		if err != nil {
			return err
		}
		files = files[:0]
		for _, tf := range tfs {
			files = append(files, file{path.Join(f.Path, tf.path), tf.digest})
		}
	}
	for _, x := range files {
		if b.o.Store.Has(x.d) {
			continue
		}
		got, err := b.o.Store.PutFile(filepath.Join(b.g.Root, filepath.FromSlash(x.path)))
		if err != nil {
			return fmt.Errorf("input %s: %w", x.path, err)
		}
		if got.Hash != x.d.Hash {
			return fmt.Errorf("input %s: its copy in lego-out changed while it was staged", x.path)
		}
	}
	return nil
}

// digestFile digests the file at abs, recording in s what the snapshot
// keeps of it under path.
func (b *builder) digestFile(s *sourceOnce, path, abs string) (*repb.Digest, bool, error) {
	t := time.Now()
	d, fp, err := b.o.Files.DigestFingerprint(abs)
	if err != nil {
		return nil, false, err
	}
	s.state = fileState{path: path, hash: d.Hash, size: d.SizeBytes, exec: fp.Executable(), fp: fp, racy: fp.Ino == 0 || fp.Racy(t)}
	return d, fp.Executable(), nil
}

// tool digests a host tool once per build: thousands of actions name the
// same shell.
func (b *builder) tool(path string) (*repb.Digest, error) {
	v, _ := b.tools.LoadOrStore(path, &sourceOnce{})
	s := v.(*sourceOnce)
	s.once.Do(func() {
		d, exec, err := b.digestFile(s, path, path)
		if err == nil && !b.o.Store.Has(d) {
			// Staged in exec roots from the store, like a source.
			_, err = b.o.Store.PutFile(path)
		}
		s.art, s.err = &artifact{digest: d, exec: exec}, err
	})
	if s.err != nil {
		return nil, s.err
	}
	return s.art.digest, nil
}

// lookup returns the outputs of the cached result of the action key and
// the layer it came from, or nil when there is none, an output blob is
// gone or corrupt, or the result lacks a declared output (servers cache
// what a worker produced, which need not be what the action declares).
func (b *builder) lookup(a *Action, key *repb.Digest) (map[string]*artifact, *repb.ActionResult, cas.Layer) {
	res, layer, err := b.o.Store.GetActionResult(b.ctx, key)
	if err != nil || res == nil || res.ExitCode != 0 {
		return nil, nil, cas.Miss
	}
	outs := b.outputsOf(a, res, layer)
	if outs == nil || checkDeclared(a, outs) != nil {
		return nil, nil, cas.Miss
	}
	b.mu.Lock()
	b.used = append(b.used, key)
	b.mu.Unlock()
	return outs, res, layer
}

// outputsOf returns the outputs of res, found in layer, when their blobs
// are all here and sound, else nil; a corrupt one (now evicted) is
// reported as a warning on a's target. A remote layer has checked that the
// server holds those it left there, and verifies what it brings.
func (b *builder) outputsOf(a *Action, res *repb.ActionResult, layer cas.Layer) map[string]*artifact {
	here := func(p string, d *repb.Digest, exec bool) bool {
		if layer == cas.Remote {
			return true
		}
		err := b.o.Store.Check(d, exec)
		if errors.Is(err, cas.ErrCorrupt) {
			b.warn(a.Owner, fmt.Sprintf("cached output %s was corrupt in the cache, so it was evicted and the action runs again (%v)", p, err))
		}
		return err == nil
	}
	outs := make(map[string]*artifact, len(res.OutputFiles)+len(res.OutputDirectories))
	for _, f := range res.OutputFiles {
		if !here(f.Path, f.Digest, f.IsExecutable) {
			return nil
		}
		outs[f.Path] = &artifact{digest: f.Digest, exec: f.IsExecutable}
	}
	for _, d := range res.OutputDirectories {
		t := &repb.Tree{}
		if err := b.o.Store.GetProto(d.TreeDigest, t); err != nil {
			return nil
		}
		files, err := treeFiles(t)
		if err != nil {
			return nil
		}
		for _, f := range files {
			if !here(path.Join(d.Path, f.path), f.digest, f.exec) {
				return nil
			}
		}
		outs[d.Path] = &artifact{digest: d.TreeDigest, tree: t}
	}
	return outs
}

// warn reports msg about target l, once per target and build.
func (b *builder) warn(l Label, msg string) {
	if _, dup := b.warned.LoadOrStore(l, true); dup {
		return
	}
	b.o.Listener.Event(&Event{Type: EvWarning, Time: time.Now(), Label: l.String(), Message: msg})
}

// fetchInputs has the store bring the files of an action's built inputs
// here, for an action run here in a lazy build: the remote layer may have
// left them on the server.
func (b *builder) fetchInputs(n *node) error {
	var ds []*repb.Digest
	for _, f := range n.a.Inputs {
		if f.producer == nil {
			continue // a source: stored here by input
		}
		art, err := b.input(n, f)
		if err != nil {
			return err
		}
		ds = appendBlobs(ds, art)
	}
	return b.o.Store.Fetch(b.ctx, ds)
}

// appendBlobs appends the file digests of art (a file, or a tree's files).
func appendBlobs(ds []*repb.Digest, art *artifact) []*repb.Digest {
	if art.tree == nil {
		return append(ds, art.digest)
	}
	return append(ds, cas.TreeFiles(art.tree)...)
}

// blob reads a blob the key needs (an image manifest), which a lazy
// remote layer may have left on the server.
func (b *builder) blob(d *repb.Digest) ([]byte, error) {
	if err := b.o.Store.Fetch(b.ctx, []*repb.Digest{d}); err != nil {
		return nil, err
	}
	return b.o.Store.Get(d)
}

// resultOutputs reads the outputs of res, whose trees are in store, and
// checks them against a's declarations.
func resultOutputs(store cas.Store, a *Action, res *repb.ActionResult) (map[string]*artifact, error) {
	outs := map[string]*artifact{}
	for _, f := range res.OutputFiles {
		outs[f.Path] = &artifact{digest: f.Digest, exec: f.IsExecutable}
	}
	for _, d := range res.OutputDirectories {
		t := &repb.Tree{}
		if err := store.GetProto(d.TreeDigest, t); err != nil {
			return nil, fmt.Errorf("output directory %s: %w", d.Path, err)
		}
		outs[d.Path] = &artifact{digest: d.TreeDigest, tree: t}
	}
	return outs, checkDeclared(a, outs)
}

// checkDeclared checks outputs against a's declarations.
func checkDeclared(a *Action, outs map[string]*artifact) error {
	for _, o := range a.Outputs {
		art, ok := outs[o.Path]
		if !ok {
			return fmt.Errorf("declared output %s was not produced", o.Path)
		}
		if o.Dir != (art.tree != nil) {
			return fmt.Errorf("output %s: declared as %s", o.Path, map[bool]string{true: "a directory", false: "a file"}[o.Dir])
		}
	}
	return nil
}
