package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
)

// materialize links outputs into the workspace's lego-out tree; a lazy
// build links only those the build was asked for. Blobs a remote layer
// left on the server are fetched: a tree's in one batch, a file's by its
// Link.
func (b *builder) materialize(outs map[string]*artifact) error {
	for p, art := range outs {
		if b.o.Lazy && !b.wanted[p] {
			continue
		}
		dst := filepath.Join(b.g.Root, filepath.FromSlash(p))
		if art.tree == nil {
			if err := b.linkFile(art.digest, art.exec, dst); err != nil {
				return fmt.Errorf("materialize %s: %w", p, err)
			}
			continue
		}
		files, err := treeFiles(art.tree)
		if err != nil {
			return err
		}
		if err := b.o.Store.Fetch(b.ctx, appendBlobs(nil, art)); err != nil {
			return fmt.Errorf("fetch %s: %w", p, err)
		}
		if b.treeCurrent(dst, files) {
			continue
		}
		if err := b.swapTree(p, dst, files); err != nil {
			return err
		}
	}
	return nil
}

// treeCurrent reports whether the directory dst holds exactly files, each
// a link of its blob (a null build): swapping it anyway would unlink and
// relink every file, and the store would hash them all again next time
// (a link moves an inode's ctime).
func (b *builder) treeCurrent(dst string, files []treeFile) bool {
	want := make(map[string]treeFile, len(files))
	dirs := map[string]bool{".": true}
	for _, f := range files {
		want[f.path] = f
		for d := path.Dir(f.path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	seen := 0
	err := filepath.WalkDir(dst, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if !dirs[rel] {
				return errStale
			}
			return nil
		}
		f, ok := want[rel]
		if !ok || !e.Type().IsRegular() {
			return errStale
		}
		st, err := e.Info()
		if err != nil {
			return err
		}
		bp, err := b.o.Store.BlobPath(f.digest, f.exec)
		if err != nil {
			return err
		}
		if bst, err := os.Stat(bp); err != nil || !os.SameFile(st, bst) {
			return errStale
		}
		seen++
		return nil
	})
	return err == nil && seen == len(files)
}

var errStale = errors.New("stale")

// swapTree builds the directory dst beside the old one and swaps, so a
// reader never sees a half-written tree.
func (b *builder) swapTree(p, dst string, files []treeFile) (err error) {
	tmp := fmt.Sprintf("%s.lego-tmp-%d", dst, os.Getpid())
	if err := cas.RemoveAll(tmp); err != nil {
		return fmt.Errorf("materialize %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			cas.RemoveAll(tmp) // a failed swap leaves the previous tree only
		}
	}()
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := b.o.Store.Link(f.digest, f.exec, filepath.Join(tmp, filepath.FromSlash(f.path))); err != nil {
			return fmt.Errorf("materialize %s/%s: %w", p, f.path, err)
		}
	}
	old := fmt.Sprintf("%s.lego-old-%d", dst, os.Getpid())
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("materialize %s: %w", p, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Rename(old, dst) // put the previous tree back
		return fmt.Errorf("materialize %s: %w", p, err)
	}
	if err := cas.RemoveAll(old); err != nil {
		return fmt.Errorf("materialize %s: removing the previous tree: %w", p, err)
	}
	return nil
}

// linkFile skips the link when dst already is the blob (a null build).
func (b *builder) linkFile(d *repb.Digest, exec bool, dst string) error {
	if st, err := os.Lstat(dst); err == nil && st.Size() == d.SizeBytes && st.Mode().IsRegular() {
		if bp, err := b.o.Store.BlobPath(d, exec); err == nil {
			if bst, err := os.Stat(bp); err == nil && os.SameFile(st, bst) {
				return nil
			}
		}
		// A blob past the filesystem's link limit (many outputs with the
		// same bytes) or on another device was copied: keep a copy whose
		// bytes and execute bit are already right rather than copy again.
		if (st.Mode()&0o111 != 0) == exec && b.holds(dst, d) {
			return nil
		}
	}
	return b.o.Store.Link(d, exec, dst)
}

// holds tells whether the file at path has digest d. Small files are read;
// big ones go through the file-digest cache so a null build does not
// rehash them.
func (b *builder) holds(path string, d *repb.Digest) bool {
	if d.SizeBytes <= 64<<10 {
		data, err := os.ReadFile(path)
		return err == nil && cas.DigestOf(data).Hash == d.Hash
	}
	got, _, err := b.o.Files.Digest(path)
	return err == nil && got.Hash == d.Hash
}
