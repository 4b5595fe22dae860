package layout

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// writeLayer writes the tree at root as a tar to w: entries in sorted walk
// order, modes and owners kept, times set to Epoch, and nothing else of the
// host (no user names, no xattrs), so the same tree gives the same bytes.
// The second and later paths of a hard-linked inode become TypeLink entries.
// Sockets are left out: tar cannot hold them.
func writeLayer(w io.Writer, root string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	seen := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no unix stat", p)
		}
		hdr := &tar.Header{
			Name:    rel,
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: Epoch,
		}
		switch uint32(st.Mode) & syscall.S_IFMT {
		case syscall.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case syscall.S_IFREG:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
		case syscall.S_IFLNK:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFCHR, syscall.S_IFBLK:
			hdr.Typeflag = tar.TypeChar
			if uint32(st.Mode)&syscall.S_IFMT == syscall.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
			hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
		case syscall.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		default:
			return nil
		}
		if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				hdr.Devmajor, hdr.Devminor = 0, 0
			} else {
				seen[key] = rel
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			return copyFile(tw, p, hdr.Size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// copyFile copies exactly size bytes of the file at p, the size its header
// announced, so a file that changed under us is an error rather than a
// corrupt tar.
func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, size); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// NormalizeLayer copies the layer tar read from in (uncompressed) to out,
// deterministically: entry order kept, every mtime = Epoch (atime and ctime,
// and their PAX records, dropped), user and group names cleared, and entries
// whose path (without leading "/" or "./") equals or lies under one of drop
// left out, whiteouts of such paths included. A run step's diff from
// containerd carries the exec-root mount points and wall-clock times; this
// makes its layer reproducible. PAX records other than xattrs are dropped
// too, since tools store host inode numbers and the like there.
func NormalizeLayer(in io.Reader, out io.Writer, drop []string) error {
	var drops []string
	for _, d := range drop {
		if d = cleanName(d); d != "" {
			drops = append(drops, d)
		}
	}
	tr := tar.NewReader(in)
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		if dropped(hdr.Name, drops) {
			continue
		}
		h := *hdr
		h.ModTime = Epoch
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatUnknown
		h.PAXRecords = nil
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
				if h.PAXRecords == nil {
					h.PAXRecords = map[string]string{}
				}
				h.PAXRecords[k] = v
			}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("write layer entry %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy layer entry %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// cleanName is a tar entry name as a relative slash path with no leading
// "/" or "./" and no trailing "/"; "" is the root.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// dropped reports whether the entry name, or the path a whiteout entry
// deletes, equals or lies under one of drops.
func dropped(name string, drops []string) bool {
	n := cleanName(name)
	if dir, base := path.Split(n); strings.HasPrefix(base, ".wh.") && base != ".wh..wh..opq" {
		n = dir + strings.TrimPrefix(base, ".wh.")
	}
	for _, d := range drops {
		if n == d || strings.HasPrefix(n, d+"/") {
			return true
		}
	}
	return false
}

// gunzipCloser decompresses f and closes f with the reader.
func gunzipCloser(f io.ReadCloser) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, closerFunc(func() error {
		zr.Close()
		return f.Close()
	})}, nil
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }
