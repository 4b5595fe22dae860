package layout

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one host file to copy into an image, or a host directory whose
// tree (files and symlinks) goes under Dest.
type File struct {
	Dest string      // absolute path in the image
	Src  string      // host file or directory
	Mode os.FileMode // 0 = 0644, or 0755 if Src is executable
}

// AppendOptions says what Append adds to an image.
type AppendOptions struct {
	// Files go into one new layer, owned by root. Parent directories the
	// base image lacks are created 0755; those it has (a directory, or a
	// symlink such as Debian's /bin -> usr/bin) are left alone, so that
	// /tmp keeps its mode and merged-/usr symlinks survive.
	Files []File
	// Layers are host paths of layer tars (uncompressed or gzip, detected),
	// appended in order after the files layer.
	Layers []string
	// Env is set in the config: a variable the base has keeps its place with
	// the new value, new ones are appended sorted by name.
	Env map[string]string
	// Workdir becomes the config's WorkingDir if non-empty.
	Workdir string
}

// Append reads the single image of the layout at base, appends layers and
// config changes, and writes a new single-image layout at out.
// Deterministic: the same inputs give the same manifest digest (created and
// history timestamps = Epoch).
func Append(base, out string, o AppendOptions) (Result, error) {
	img, _, err := readImage(base)
	if err != nil {
		return Result{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Result{}, fmt.Errorf("read config of %s: %w", base, err)
	}
	cfg := cf.DeepCopy()
	m, err := img.Manifest()
	if err != nil {
		return Result{}, fmt.Errorf("read manifest of %s: %w", base, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return Result{}, fmt.Errorf("read layers of %s: %w", base, err)
	}
	files, err := fileEntries(o.Files)
	if err != nil {
		return Result{}, err
	}
	res, err := build(out, func() (v1.Image, error) {
		var created []string
		if len(files) > 0 {
			have, err := existingPaths(base, m.Layers, layers, files)
			if err != nil {
				return nil, err
			}
			l, err := spoolLayer(blobsDir(out), func(w io.Writer) error { return writeFiles(w, files, have) })
			if err != nil {
				return nil, err
			}
			layers = append(layers, l)
			created = append(created, "lego append: files")
		}
		for _, p := range o.Layers {
			l, err := hostLayer(p)
			if err != nil {
				return nil, err
			}
			layers = append(layers, l)
			created = append(created, "lego append: layer")
		}
		cfg.Config.Env = setEnv(cfg.Config.Env, o.Env)
		if o.Workdir != "" {
			cfg.Config.WorkingDir = o.Workdir
		}
		cfg.Created = v1.Time{Time: Epoch}
		// Only extend a history that matches the layers; one that does
		// not would be made no more right by adding to it.
		if nonEmpty(cfg.History) == len(m.Layers) {
			for _, c := range created {
				cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: c})
			}
		}
		return newImageFromConfig(cfg, layers)
	})
	if err != nil {
		return Result{}, fmt.Errorf("append to %s: %w", base, err)
	}
	return res, nil
}

func nonEmpty(h []v1.History) int {
	n := 0
	for _, e := range h {
		if !e.EmptyLayer {
			n++
		}
	}
	return n
}

// setEnv returns env with the variables of set given their values.
func setEnv(env []string, set map[string]string) []string {
	out := make([]string, 0, len(env)+len(set))
	done := map[string]bool{}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if v, ok := set[name]; ok {
			kv = name + "=" + v
			done[name] = true
		}
		out = append(out, kv)
	}
	names := make([]string, 0, len(set))
	for name := range set {
		if !done[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, name+"="+set[name])
	}
	return out
}

// fileEntry is a File checked and resolved: name is the tar path.
type fileEntry struct {
	name string
	src  string
	mode int64
	size int64
	link string // a symlink's target
}

// expand replaces each directory by the files and symlinks under it.
func expand(files []File) ([]File, error) {
	var out []File
	for _, f := range files {
		fi, err := os.Stat(f.Src)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, f)
			continue
		}
		err = filepath.WalkDir(f.Src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(f.Src, p)
			if err != nil {
				return err
			}
			out = append(out, File{Dest: path.Join(f.Dest, filepath.ToSlash(rel)), Src: p, Mode: f.Mode})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fileEntries(files []File) ([]fileEntry, error) {
	files, err := expand(files)
	if err != nil {
		return nil, err
	}
	var out []fileEntry
	names := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Dest) {
			return nil, fmt.Errorf("file destination %q is not an absolute path", f.Dest)
		}
		name := cleanName(f.Dest)
		if name == "" {
			return nil, fmt.Errorf("file destination %q is the root directory", f.Dest)
		}
		if names[name] {
			return nil, fmt.Errorf("two files go to %s", f.Dest)
		}
		names[name] = true
		fi, err := os.Lstat(f.Src)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(f.Src)
			if err != nil {
				return nil, err
			}
			out = append(out, fileEntry{name: name, link: target, mode: 0o777})
			continue
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", f.Src)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
		}
		out = append(out, fileEntry{name: name, src: f.Src, mode: tarMode(mode), size: fi.Size()})
	}
	for _, f := range out {
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			if names[d] {
				return nil, fmt.Errorf("/%s is both a file and the directory of /%s", d, f.name)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// tarMode turns an os.FileMode into the permission bits of a tar header.
func tarMode(m os.FileMode) int64 {
	mode := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// parents returns the directories above the files, "a" before "a/b".
func parents(files []fileEntry) []string {
	set := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// existingPaths reports which parent directories of files the base image
// already has, applying each layer's whiteouts to the layers below it.
func existingPaths(base string, descs []v1.Descriptor, layers []v1.Layer, files []fileEntry) (map[string]bool, error) {
	have := map[string]bool{}
	for _, d := range parents(files) {
		have[d] = false
	}
	for i, l := range layers {
		rc, err := openUncompressed(base, descs[i], l)
		if err != nil {
			return nil, err
		}
		var present, gone []string
		opaque := map[string]bool{}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, fmt.Errorf("read layer %s: %w", descs[i].Digest, err)
			}
			n := cleanName(hdr.Name)
			dir, b := path.Split(n)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case b == ".wh..wh..opq":
				opaque[dir] = true
			case strings.HasPrefix(b, ".wh."):
				gone = append(gone, path.Join(dir, strings.TrimPrefix(b, ".wh.")))
			default:
				if _, ok := have[n]; ok {
					present = append(present, n)
				}
			}
		}
		rc.Close()
		for d := range have {
			for _, g := range gone {
				if d == g || strings.HasPrefix(d, g+"/") {
					have[d] = false
				}
			}
			for o := range opaque {
				if o == "" || strings.HasPrefix(d, o+"/") {
					have[d] = false
				}
			}
		}
		for _, n := range present {
			have[n] = true
		}
	}
	return have, nil
}

// openUncompressed reads a base layer's tar, straight from the layout's blob
// file when it is uncompressed, so that tar can seek past file contents.
func openUncompressed(base string, desc v1.Descriptor, l v1.Layer) (io.ReadCloser, error) {
	if desc.MediaType == types.OCIUncompressedLayer || desc.MediaType == types.DockerUncompressedLayer {
		if f, err := os.Open(filepath.Join(base, "blobs", desc.Digest.Algorithm, desc.Digest.Hex)); err == nil {
			return f, nil
		}
	}
	return l.Uncompressed()
}

// writeFiles writes the files layer: missing parent directories, then the
// files, in name order, owned by root, times Epoch.
func writeFiles(w io.Writer, files []fileEntry, have map[string]bool) error {
	type entry struct {
		hdr *tar.Header
		src string
	}
	var entries []entry
	for _, d := range parents(files) {
		if !have[d] {
			entries = append(entries, entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: Epoch}})
		}
	}
	for _, f := range files {
		if f.link != "" {
			entries = append(entries, entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: f.name, Linkname: f.link, Mode: f.mode, ModTime: Epoch}})
			continue
		}
		entries = append(entries, entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: f.size, ModTime: Epoch}, src: f.src})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		return strings.TrimSuffix(entries[i].hdr.Name, "/") < strings.TrimSuffix(entries[j].hdr.Name, "/")
	})
	bw := bufio.NewWriter(w)
	tw := tar.NewWriter(bw)
	for _, e := range entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return err
		}
		if e.src != "" {
			if err := copyFile(tw, e.src, e.hdr.Size); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
