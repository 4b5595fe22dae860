// What an action left behind: changed inputs, undeclared files, and the
// declared outputs, stored in the CAS.

package local

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"

	"github.com/legobuild/lego/cas"
)

// checkInputs reports inputs the action changed. Inputs are hardlinks to
// store blobs, so a write through one corrupts the store: such blobs are
// removed so the store never serves them.
func (sb *sandbox) checkInputs() error {
	var modified []string
	for i := range sb.inputs {
		f := &sb.inputs[i]
		p := filepath.Join(sb.root, f.rel)
		fi, err := os.Lstat(p)
		if err != nil {
			// Deleting an input is allowed, but it may have been written
			// to first.
			if sb.removeIfCorrupt(f) {
				modified = append(modified, f.rel)
			}
			continue
		}
		st := statOf(fi)
		if st == f.st {
			continue
		}
		if fi.Mode().IsRegular() && st.size == f.st.size && hashFile(p) == f.digest.Hash {
			// Same content, only the times or the mode changed.
			if st.mode != f.st.mode {
				// A chmod through the link changes the blob for everyone.
				_ = os.Chmod(p, f.st.mode)
				modified = append(modified, f.rel+" (mode)")
			}
			continue
		}
		modified = append(modified, f.rel)
		sb.removeIfCorrupt(f)
	}
	for _, s := range sb.symlinks {
		if t, err := os.Readlink(filepath.Join(sb.root, s.rel)); err == nil && t != s.target {
			modified = append(modified, s.rel)
		}
	}
	if len(modified) == 0 {
		return nil
	}
	sort.Strings(modified)
	return fmt.Errorf("action modified input(s): %s", strings.Join(modified, ", "))
}

// removeIfCorrupt checks the stored file that input f was linked from (the
// blob, or its executable variant) and removes it if its content no longer
// matches. It reports whether it did. A verified Get is not enough: it may
// answer from memory, and it never reads the executable variant.
func (sb *sandbox) removeIfCorrupt(f *inputFile) bool {
	p, err := sb.store.BlobPath(f.digest, f.exec)
	if err != nil {
		// Not stored, or stored with the wrong size, which the store
		// already refuses to serve.
		return false
	}
	if fi, err := os.Lstat(p); err == nil && statOf(fi) == f.st {
		return false // the very inode that was linked, untouched
	}
	if hashFile(p) == f.digest.Hash {
		return false
	}
	_ = os.Remove(p)
	return true
}

// hashFile returns the hex sha256 of a file, "" if unreadable.
func hashFile(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// findUndeclared lists paths the action created that are neither inputs,
// nor declared outputs, nor directories holding them. It reads directory
// entries only: their types come from getdents, so no stat per entry.
func (sb *sandbox) findUndeclared(abs, rel string, n *node, out *[]string) error {
	f, err := os.Open(abs)
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		c := n.kids[name]
		p := path.Join(rel, name)
		switch {
		case c == nil:
			*out = append(*out, p)
		case c.kind == kDir || c.kind == kParent:
			if !e.IsDir() {
				*out = append(*out, p) // a directory replaced by something else
				continue
			}
			if err := sb.findUndeclared(filepath.Join(abs, name), p, c, out); err != nil {
				return err
			}
		}
		// Input files and symlinks are checked by checkInputs; outputs by
		// collectOutputs.
	}
	return nil
}

// foundOutput is a declared output as the action left it.
type foundOutput struct {
	output
	abs   string // after resolving a symlink
	fi    fs.FileInfo
	alias bool // reached through a symlink: the file may be another output or an input
}

// findOutputs checks that every declared output exists with the right type.
func (sb *sandbox) findOutputs(outs []output) ([]foundOutput, error) {
	var missing, bad []string
	var items []foundOutput
	var realRoot string
	for _, o := range outs {
		abs := filepath.Join(sb.root, o.rel)
		fi, err := os.Lstat(abs)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			missing = append(missing, o.decl)
			continue
		} else if err != nil {
			return nil, err
		}
		alias := false
		if fi.Mode()&fs.ModeSymlink != 0 {
			if realRoot == "" {
				if realRoot, err = filepath.EvalSymlinks(sb.root); err != nil {
					return nil, err
				}
			}
			target, err := filepath.EvalSymlinks(abs)
			if err != nil {
				bad = append(bad, o.decl+" (a dangling symlink)")
				continue
			}
			if !strings.HasPrefix(target, realRoot+string(filepath.Separator)) {
				bad = append(bad, o.decl+" (a symlink pointing outside the exec root)")
				continue
			}
			if fi, err = os.Stat(target); err != nil {
				return nil, err
			}
			abs, alias = target, true
		}
		switch {
		case fi.Mode().IsRegular():
			if o.want == 'd' {
				bad = append(bad, o.decl+" (a file, declared a directory)")
				continue
			}
		case fi.IsDir():
			if o.want == 'f' {
				bad = append(bad, o.decl+" (a directory, declared a file)")
				continue
			}
		default:
			bad = append(bad, o.decl+" (neither a regular file nor a directory)")
			continue
		}
		items = append(items, foundOutput{o, abs, fi, alias})
	}
	var errs []error
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing declared output(s): %s", strings.Join(missing, ", ")))
	}
	if len(bad) > 0 {
		errs = append(errs, fmt.Errorf("bad output(s): %s", strings.Join(bad, "; ")))
	}
	return items, errors.Join(errs...)
}

// storeOutputs stores the outputs in the CAS and lists them in res.
func (sb *sandbox) storeOutputs(res *repb.ActionResult, items []foundOutput) error {
	// Ingesting moves files, so outputs reached through symlinks (stored
	// as copies) go first, before their targets move.
	sort.SliceStable(items, func(i, j int) bool { return items[i].alias && !items[j].alias })
	for _, it := range items {
		if it.fi.IsDir() {
			tree, rootDigest, err := sb.buildTree(it.abs, it.alias)
			if err != nil {
				return fmt.Errorf("output %q: %w", it.decl, err)
			}
			td, err := putProto(sb.store, tree)
			if err != nil {
				return err
			}
			res.OutputDirectories = append(res.OutputDirectories, &repb.OutputDirectory{
				Path: it.decl, TreeDigest: td, RootDirectoryDigest: rootDigest,
			})
			continue
		}
		d, err := sb.ingest(it.abs, it.fi, it.alias)
		if err != nil {
			return fmt.Errorf("output %q: %w", it.decl, err)
		}
		res.OutputFiles = append(res.OutputFiles, &repb.OutputFile{
			Path: it.decl, Digest: d, IsExecutable: it.fi.Mode()&0o111 != 0,
		})
	}
	sort.Slice(res.OutputFiles, func(i, j int) bool { return res.OutputFiles[i].Path < res.OutputFiles[j].Path })
	sort.Slice(res.OutputDirectories, func(i, j int) bool {
		return res.OutputDirectories[i].Path < res.OutputDirectories[j].Path
	})
	return nil
}

// ingest stores the output file abs; fi is its stat (of the target, for an
// output reached through a symlink). Moving the file in is the fast path,
// but the moved inode becomes the blob and the store makes it read-only, so
// a copy is stored instead when the inode has other names (maybe an input,
// that is another blob) or is a symlink's target (maybe another output
// still to be stored, whose mode must not change first).
func (sb *sandbox) ingest(abs string, fi fs.FileInfo, alias bool) (*repb.Digest, error) {
	if st, ok := fi.Sys().(*syscall.Stat_t); alias || (ok && st.Nlink > 1) {
		return sb.ingestCopy(abs)
	}
	d, err := sb.store.IngestFile(abs)
	if err != nil {
		// E.g. a read-only parent directory stops the move.
		return sb.ingestCopy(abs)
	}
	return d, nil
}

func (sb *sandbox) ingestCopy(abs string) (*repb.Digest, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sb.storeCopy(f)
}

// buildTree stores every file under dir and returns its Tree: the root and
// each distinct child Directory once, in a deterministic (post-)order.
// Every Directory is also stored on its own, so that a later action can use
// the output directory as an input root subtree.
func (sb *sandbox) buildTree(dir string, alias bool) (*repb.Tree, *repb.Digest, error) {
	tree := &repb.Tree{}
	seen := map[string]bool{}
	var walk func(abs string) (*repb.Directory, *repb.Digest, error)
	walk = func(abs string) (*repb.Directory, *repb.Digest, error) {
		ents, err := os.ReadDir(abs) // sorted by name, as REAPI requires
		if err != nil {
			return nil, nil, err
		}
		out := &repb.Directory{}
		for _, e := range ents {
			p := filepath.Join(abs, e.Name())
			switch t := e.Type(); {
			case t.IsRegular():
				fi, err := e.Info()
				if err != nil {
					return nil, nil, err
				}
				d, err := sb.ingest(p, fi, alias)
				if err != nil {
					return nil, nil, err
				}
				out.Files = append(out.Files, &repb.FileNode{Name: e.Name(), Digest: d, IsExecutable: fi.Mode()&0o111 != 0})
			case t.IsDir():
				sub, d, err := walk(p)
				if err != nil {
					return nil, nil, err
				}
				out.Directories = append(out.Directories, &repb.DirectoryNode{Name: e.Name(), Digest: d})
				if k := cas.Key(d); !seen[k] {
					seen[k] = true
					tree.Children = append(tree.Children, sub)
				}
			case t&fs.ModeSymlink != 0:
				// Kept as a symlink, as REAPI servers do by default.
				target, err := os.Readlink(p)
				if err != nil {
					return nil, nil, err
				}
				out.Symlinks = append(out.Symlinks, &repb.SymlinkNode{Name: e.Name(), Target: target})
			default:
				return nil, nil, fmt.Errorf("%s: unsupported file type %v", p, t)
			}
		}
		d, err := putProto(sb.store, out)
		return out, d, err
	}
	root, d, err := walk(dir)
	if err != nil {
		return nil, nil, err
	}
	tree.Root = root
	return tree, d, nil
}

// putProto stores m deterministically encoded, so equal trees get equal
// digests whatever the map or field order in memory.
func putProto(store *cas.Disk, m proto.Message) (*repb.Digest, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	return store.Put(b)
}

// removeAll deletes dir. Actions may leave read-only directories, which stop
// unlinking for a non-root user: on failure make directories writable (never
// files, which may be hardlinks to store blobs) and try again.
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if fi, err := d.Info(); err == nil {
				_ = os.Chmod(p, fi.Mode().Perm()|0o700)
			}
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
