package layout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

func TestMirrorFromAptSources(t *testing.T) {
	for _, tc := range []struct {
		etc     string
		want    string
		wantErr string
	}{
		// deb822: deb-src stanza and disabled files skipped, the
		// commented snapshot URI ignored, the deb stanza wins over the
		// security one after it.
		{etc: "testdata/deb822", want: "http://deb.debian.org/debian"},
		// One-line format: comments and deb-src skipped, bracketed
		// options with spaces skipped.
		{etc: "testdata/oneline", want: "http://ftp.de.debian.org/debian"},
		// Security mirror, third-party repository and "Enabled: no"
		// stanza skipped across files, in apt's order.
		{etc: "testdata/securityfirst", want: "http://mirror.example.org/debian/"},
		{etc: "testdata/none", wantErr: "testdata/none/apt/sources.list.d/nodesource.sources"},
		{etc: "testdata/missing", wantErr: "testdata/missing/apt/sources.list"},
	} {
		got, err := MirrorFromAptSources(tc.etc)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got %q, %v; want an error naming %s", tc.etc, got, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "disabled-by-farm") {
				t.Errorf("%s: error names a disabled file it must not read: %v", tc.etc, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.etc, got, err, tc.want)
		}
	}
}

func TestWriteLayer(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "a/f"), "hello", 0o640)
	mkfile(t, filepath.Join(root, "b"), "#!/bin/sh\n", 0o755)
	mkfile(t, filepath.Join(root, "suid"), "x", 0o755)
	must(t, os.Chmod(filepath.Join(root, "suid"), 0o755|os.ModeSetuid))
	must(t, os.Link(filepath.Join(root, "a/f"), filepath.Join(root, "a/h")))
	must(t, os.Symlink("a/f", filepath.Join(root, "s")))
	must(t, os.MkdirAll(filepath.Join(root, "empty/dir"), 0o700))
	must(t, syscall.Mkfifo(filepath.Join(root, "p"), 0o600))
	asRoot := os.Geteuid() == 0
	if asRoot {
		must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, os.Chmod(filepath.Join(root, "null"), 0o666))
		must(t, os.Lchown(filepath.Join(root, "b"), 123, 456))
	}
	must(t, unix.Mknod(filepath.Join(root, "sock"), unix.S_IFSOCK|0o600, 0))

	var first bytes.Buffer
	must(t, writeLayer(&first, root))

	// Touch everything, then write again: the bytes must not change.
	later := time.Now().Add(time.Hour)
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, later, later)
	}))
	var second bytes.Buffer
	must(t, writeLayer(&second, root))
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("the same tree written twice gave different tars")
	}

	entries := readTar(t, bytes.NewReader(first.Bytes()))
	want := []string{"a/", "a/f", "a/h", "b", "empty/", "empty/dir/", "null", "p", "s", "suid"}
	if !asRoot {
		want = slices.DeleteFunc(want, func(s string) bool { return s == "null" })
	}
	if got := entryNames(entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v (sorted, socket left out)", got, want)
	}
	byName := map[string]*tar.Header{}
	for _, e := range entries {
		byName[e.hdr.Name] = e.hdr
		if !e.hdr.ModTime.Equal(Epoch) || e.hdr.Uname != "" || e.hdr.Gname != "" || len(e.hdr.PAXRecords) != 0 {
			t.Errorf("%s: mtime %v uname %q gname %q pax %v; want Epoch and nothing else", e.hdr.Name, e.hdr.ModTime, e.hdr.Uname, e.hdr.Gname, e.hdr.PAXRecords)
		}
	}
	check := func(name string, typ byte, mode int64, link string) {
		t.Helper()
		h := byName[name]
		if h.Typeflag != typ || h.Mode != mode || h.Linkname != link {
			t.Errorf("%s: type %c mode %o link %q; want %c %o %q", name, h.Typeflag, h.Mode, h.Linkname, typ, mode, link)
		}
	}
	check("a/", tar.TypeDir, 0o755, "")
	check("a/f", tar.TypeReg, 0o640, "")
	check("a/h", tar.TypeLink, 0o640, "a/f")
	check("s", tar.TypeSymlink, 0o777, "a/f")
	check("p", tar.TypeFifo, 0o600, "")
	check("suid", tar.TypeReg, 0o4755, "")
	check("empty/dir/", tar.TypeDir, 0o700, "")
	if asRoot {
		check("null", tar.TypeChar, 0o666, "")
		if h := byName["null"]; h.Devmajor != 1 || h.Devminor != 3 {
			t.Errorf("null: device %d,%d; want 1,3", h.Devmajor, h.Devminor)
		}
		if h := byName["b"]; h.Uid != 123 || h.Gid != 456 {
			t.Errorf("b: owner %d:%d; want 123:456", h.Uid, h.Gid)
		}
	}
	for _, e := range entries {
		if e.hdr.Name == "a/f" && string(e.body) != "hello" {
			t.Errorf("a/f holds %q", e.body)
		}
	}

	// What was packed unpacks to the same tree, links and all.
	dst := t.TempDir()
	untar(t, bytes.NewReader(first.Bytes()), dst)
	if target, err := os.Readlink(filepath.Join(dst, "s")); err != nil || target != "a/f" {
		t.Errorf("symlink s -> %q, %v", target, err)
	}
	fa, err := os.Stat(filepath.Join(dst, "a/f"))
	must(t, err)
	fh, err := os.Stat(filepath.Join(dst, "a/h"))
	must(t, err)
	if !os.SameFile(fa, fh) {
		t.Error("a/f and a/h are not one file after unpacking")
	}
}

func TestNormalizeLayer(t *testing.T) {
	layer := func(when time.Time, user string) []byte {
		return mkTar(t, []tarEntry{
			{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "./proc/", Mode: 0o755}},
			{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "proc/cpuinfo", Mode: 0o644}, body: []byte("x")},
			{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "/dev/", Mode: 0o755}},
			{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
			{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "etc/hosts", Mode: 0o644}, body: []byte("127.0.0.1 x")},
			{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "etc/hostsfile", Mode: 0o644}, body: []byte("kept")},
			{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.hosts", Mode: 0o644}},
			{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/ping", Mode: 0o755, Uid: 7,
				PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "cap", "SCHILY.ino": "4242"}}, body: []byte("ELF")},
			{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "usr/bin/ping6", Linkname: "usr/bin/ping"}},
		}, func(h *tar.Header) {
			h.ModTime, h.AccessTime, h.ChangeTime = when, when, when
			h.Uname, h.Gname = user, user
			h.Format = tar.FormatPAX
		})
	}
	drop := []string{"proc", "/dev", "./etc/hosts"}
	var a, b bytes.Buffer
	must(t, NormalizeLayer(bytes.NewReader(layer(time.Now(), "root")), &a, drop))
	must(t, NormalizeLayer(bytes.NewReader(layer(time.Now().Add(-time.Hour), "builder")), &b, drop))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("layers differing only in times and user names normalize differently")
	}
	entries := readTar(t, &a)
	want := []string{"etc/", "etc/hostsfile", "usr/bin/ping", "usr/bin/ping6"}
	if got := entryNames(entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for _, e := range entries {
		h := e.hdr
		if !h.ModTime.Equal(Epoch) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v atime %v ctime %v uname %q gname %q", h.Name, h.ModTime, h.AccessTime, h.ChangeTime, h.Uname, h.Gname)
		}
		for k := range h.PAXRecords {
			if k == "mtime" || k == "atime" || k == "ctime" || k == "SCHILY.ino" {
				t.Errorf("%s: PAX record %s kept", h.Name, k)
			}
		}
	}
	ping := entries[2]
	if ping.hdr.PAXRecords["SCHILY.xattr.security.capability"] != "cap" || ping.hdr.Uid != 7 || string(ping.body) != "ELF" {
		t.Errorf("ping: %+v %q; want xattr, uid and contents kept", ping.hdr, ping.body)
	}
	if l := entries[3].hdr; l.Typeflag != tar.TypeLink || l.Linkname != "usr/bin/ping" {
		t.Errorf("ping6: %+v; want the hard link kept", l)
	}
}

func TestAppend(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	writeTestLayout(t, base, baseImage(t))

	src := t.TempDir()
	tool := mkfile(t, filepath.Join(src, "tool"), "#!/bin/sh\necho hi\n", 0o755)
	conf := mkfile(t, filepath.Join(src, "conf.txt"), "a=1\n", 0o644)
	secret := mkfile(t, filepath.Join(src, "x"), "tmp", 0o644)
	y := mkfile(t, filepath.Join(src, "y"), "y", 0o600)
	hello := mkfile(t, filepath.Join(src, "hello"), "hello", 0o644)
	plain := filepath.Join(src, "plain.tar")
	must(t, os.WriteFile(plain, mkTar(t, []tarEntry{{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "srv/data", Mode: 0o644}, body: []byte("data")}}, nil), 0o644))
	gzTar := mkTar(t, []tarEntry{{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "srv/more", Mode: 0o644}, body: []byte("more")}}, nil)
	gz := filepath.Join(src, "more.tar.gz")
	must(t, os.WriteFile(gz, gzipBytes(t, gzTar), 0o644))

	opts := AppendOptions{
		Files: []File{
			{Dest: "/usr/local/bin/tool", Src: tool},
			{Dest: "/etc/app/conf.txt", Src: conf},
			{Dest: "/tmp/x", Src: secret, Mode: 0o600},
			{Dest: "/opt/y", Src: y},
			{Dest: "/bin/hello", Src: hello, Mode: 0o755 | os.ModeSetuid},
		},
		Layers:  []string{plain, gz},
		Env:     map[string]string{"PATH": "/usr/local/bin:/bin", "LANG": "C.UTF-8", "A": "1"},
		Workdir: "/work",
	}
	out1 := filepath.Join(t.TempDir(), "out")
	r1, err := Append(base, out1, opts)
	must(t, err)
	// New mtimes on every source, and an output directory that exists
	// empty: the digest must not change.
	later := time.Now().Add(time.Hour)
	for _, p := range []string{tool, conf, secret, y, hello, plain, gz} {
		must(t, os.Chtimes(p, later, later))
	}
	out2 := t.TempDir()
	r2, err := Append(base, out2, opts)
	must(t, err)
	if r1 != r2 {
		t.Fatalf("same inputs, different images: %v and %v", r1, r2)
	}
	if got, err := ReadManifest(out1); err != nil || got != r1 {
		t.Fatalf("ReadManifest = %v, %v; Append said %v", got, err, r1)
	}
	verifyBlobs(t, out1)

	img, _, err := readImage(out1)
	must(t, err)
	cfg, err := img.ConfigFile()
	must(t, err)
	if want := []string{"PATH=/usr/local/bin:/bin", "HOME=/root", "A=1", "LANG=C.UTF-8"}; !reflect.DeepEqual(cfg.Config.Env, want) {
		t.Errorf("env %q, want %q", cfg.Config.Env, want)
	}
	if cfg.Config.WorkingDir != "/work" || !reflect.DeepEqual(cfg.Config.Cmd, []string{"sh"}) {
		t.Errorf("workdir %q cmd %q; want /work and the base's [sh]", cfg.Config.WorkingDir, cfg.Config.Cmd)
	}
	if !cfg.Created.Time.Equal(Epoch) {
		t.Errorf("created %v, want Epoch", cfg.Created)
	}
	var createdBy []string
	for _, h := range cfg.History[2:] {
		createdBy = append(createdBy, h.CreatedBy)
		if !h.Created.Time.Equal(Epoch) {
			t.Errorf("history %q created %v, want Epoch", h.CreatedBy, h.Created)
		}
	}
	if want := []string{"lego append: files", "lego append: layer", "lego append: layer"}; len(cfg.History) != 5 || !reflect.DeepEqual(createdBy, want) {
		t.Errorf("history %v, want the base's two entries then %v", cfg.History, want)
	}

	m, err := img.Manifest()
	must(t, err)
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %s config %s; want OCI", m.MediaType, m.Config.MediaType)
	}
	var mts []types.MediaType
	for _, l := range m.Layers {
		mts = append(mts, l.MediaType)
	}
	if want := []types.MediaType{types.OCIUncompressedLayer, types.OCILayer, types.OCIUncompressedLayer, types.OCIUncompressedLayer, types.OCILayer}; !reflect.DeepEqual(mts, want) {
		t.Errorf("layer media types %v, want %v", mts, want)
	}
	if len(cfg.RootFS.DiffIDs) != 5 || cfg.RootFS.DiffIDs[4] != sha256Hash(gzTar) {
		t.Errorf("diff ids %v; want 5, the last the gzip layer's uncompressed digest", cfg.RootFS.DiffIDs)
	}
	gzBlob, err := os.ReadFile(filepath.Join(out1, "blobs/sha256", m.Layers[4].Digest.Hex))
	must(t, err)
	if want, _ := os.ReadFile(gz); !bytes.Equal(gzBlob, want) {
		t.Error("the gzip layer's blob is not the file given")
	}

	layers, err := img.Layers()
	must(t, err)
	rc, err := layers[2].Uncompressed()
	must(t, err)
	files := readTar(t, rc)
	rc.Close()
	// bin is a symlink and etc, tmp, usr exist in the base: no entry for
	// them; opt was whited out by the base's second layer: recreated.
	want := []string{"bin/hello", "etc/app/", "etc/app/conf.txt", "opt/", "opt/y", "tmp/x", "usr/local/", "usr/local/bin/", "usr/local/bin/tool"}
	if got := entryNames(files); !reflect.DeepEqual(got, want) {
		t.Fatalf("files layer %v, want %v", got, want)
	}
	modes := map[string]int64{"bin/hello": 0o4755, "etc/app/": 0o755, "etc/app/conf.txt": 0o644, "opt/": 0o755, "opt/y": 0o644, "tmp/x": 0o600, "usr/local/bin/tool": 0o755}
	for _, f := range files {
		if m, ok := modes[f.hdr.Name]; ok && f.hdr.Mode != m {
			t.Errorf("%s: mode %o, want %o", f.hdr.Name, f.hdr.Mode, m)
		}
		if f.hdr.Uid != 0 || f.hdr.Gid != 0 || !f.hdr.ModTime.Equal(Epoch) {
			t.Errorf("%s: owner %d:%d mtime %v; want root and Epoch", f.hdr.Name, f.hdr.Uid, f.hdr.Gid, f.hdr.ModTime)
		}
		if f.hdr.Name == "usr/local/bin/tool" && string(f.body) != "#!/bin/sh\necho hi\n" {
			t.Errorf("tool holds %q", f.body)
		}
	}

	// Different inputs give a different image; bad inputs are errors.
	opts.Env = map[string]string{"A": "2"}
	r3, err := Append(base, t.TempDir(), opts)
	must(t, err)
	if r3.Digest == r1.Digest {
		t.Error("a different env gave the same digest")
	}
	if _, err := Append(base, t.TempDir(), AppendOptions{Files: []File{{Dest: "rel/path", Src: tool}}}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative destination: %v", err)
	}
	if _, err := Append(base, out1, opts); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty output: %v", err)
	}
	// A directory adds its tree, symlinks included.
	tree := t.TempDir()
	mkfile(t, filepath.Join(tree, "pkg", "mod.py"), "x = 1\n", 0o644)
	mkfile(t, filepath.Join(tree, "run.sh"), "#!/bin/sh\n", 0o755)
	must(t, os.Symlink("pkg/mod.py", filepath.Join(tree, "link.py")))
	out4 := filepath.Join(t.TempDir(), "tree")
	_, err = Append(base, out4, AppendOptions{Files: []File{{Dest: "/testbed", Src: tree}}})
	must(t, err)
	img4, _, err := readImage(out4)
	must(t, err)
	ls, err := img4.Layers()
	must(t, err)
	rc, err = ls[len(ls)-1].Uncompressed()
	must(t, err)
	tf := readTar(t, rc)
	rc.Close()
	if got, want := entryNames(tf), []string{"testbed/", "testbed/link.py", "testbed/pkg/", "testbed/pkg/mod.py", "testbed/run.sh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("directory layer %v, want %v", got, want)
	}
	for _, f := range tf {
		switch f.hdr.Name {
		case "testbed/link.py":
			if f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != "pkg/mod.py" {
				t.Errorf("link.py: type %c target %q, want a symlink to pkg/mod.py", f.hdr.Typeflag, f.hdr.Linkname)
			}
		case "testbed/run.sh":
			if f.hdr.Mode != 0o755 {
				t.Errorf("run.sh: mode %o, want 755", f.hdr.Mode)
			}
		}
	}

	failed := filepath.Join(t.TempDir(), "failed")
	if _, err := Append(base, failed, AppendOptions{Layers: []string{filepath.Join(src, "missing.tar")}}); err == nil {
		t.Error("missing layer file: no error")
	}
	if _, err := os.Stat(failed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed Append left %s behind: %v", failed, err)
	}
}

func TestArchiveDocker(t *testing.T) {
	img := baseImage(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "image.tar")
	must(t, tarball.WriteToFile(src, name.MustParseReference("example.com/lego/base:1"), img))

	r1, err := Archive(src, filepath.Join(dir, "out1"))
	must(t, err)
	r2, err := Archive(src, filepath.Join(dir, "out2"))
	must(t, err)
	if r1 != r2 {
		t.Fatalf("loading the same tarball twice: %v and %v", r1, r2)
	}
	// A gzipped docker save is the same image.
	raw, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(src+".gz", gzipBytes(t, raw), 0o644))
	r3, err := Archive(src+".gz", filepath.Join(dir, "out3"))
	must(t, err)
	if r3 != r1 {
		t.Errorf("gzipped tarball gave %v, plain %v", r3, r1)
	}
	if got, err := ReadManifest(filepath.Join(dir, "out1")); err != nil || got != r1 {
		t.Errorf("ReadManifest = %v, %v; Archive said %v", got, err, r1)
	}
	verifyBlobs(t, filepath.Join(dir, "out1"))

	got, _, err := readImage(filepath.Join(dir, "out1"))
	must(t, err)
	// Config kept byte for byte, layers stored uncompressed under OCI
	// media types, with the same content.
	wantCfg, _ := img.ConfigName()
	if gotCfg, _ := got.ConfigName(); gotCfg != wantCfg {
		t.Errorf("config %s, want %s", gotCfg, wantCfg)
	}
	m, err := got.Manifest()
	must(t, err)
	wantLayers, _ := img.Layers()
	if len(m.Layers) != len(wantLayers) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(wantLayers))
	}
	for i, l := range m.Layers {
		diffID, _ := wantLayers[i].DiffID()
		if l.MediaType != types.OCIUncompressedLayer || l.Digest != diffID {
			t.Errorf("layer %d: %s %s; want uncompressed %s", i, l.MediaType, l.Digest, diffID)
		}
	}

	two := filepath.Join(dir, "two.tar")
	must(t, tarball.MultiRefWriteToFile(two, map[name.Reference]v1.Image{
		name.MustParseReference("example.com/a:1"): img,
		name.MustParseReference("example.com/b:1"): ociImage(t, "other"),
	}))
	if _, err := Archive(two, filepath.Join(dir, "out4")); err == nil || !strings.Contains(err.Error(), "example.com/a:1") || !strings.Contains(err.Error(), "example.com/b:1") {
		t.Errorf("two images: %v; want an error listing both", err)
	}
}

func TestArchiveOCI(t *testing.T) {
	dir := t.TempDir()
	img := ociImage(t, "oci")
	want, err := img.Digest()
	must(t, err)
	lay := filepath.Join(dir, "layout")
	writeTestLayout(t, lay, img)
	src := filepath.Join(dir, "image.tar")
	tarDir(t, lay, src)

	r1, err := Archive(src, filepath.Join(dir, "out1"))
	must(t, err)
	if r1.Digest != want.String() {
		t.Errorf("digest %s, want the image's own %s", r1.Digest, want)
	}
	r2, err := Archive(src, filepath.Join(dir, "out2"))
	must(t, err)
	if r2 != r1 {
		t.Errorf("loading twice: %v and %v", r1, r2)
	}
	if got, err := ReadManifest(filepath.Join(dir, "out1")); err != nil || got != r1 {
		t.Errorf("ReadManifest = %v, %v; Archive said %v", got, err, r1)
	}
	verifyBlobs(t, filepath.Join(dir, "out1"))

	// A Docker-typed image in an OCI layout comes out with OCI media types.
	docker := filepath.Join(dir, "docker-layout")
	writeTestLayout(t, docker, baseImage(t))
	tarDir(t, docker, filepath.Join(dir, "docker.tar"))
	r3, err := Archive(filepath.Join(dir, "docker.tar"), filepath.Join(dir, "out3"))
	must(t, err)
	got, _, err := readImage(filepath.Join(dir, "out3"))
	must(t, err)
	m, err := got.Manifest()
	must(t, err)
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCIUncompressedLayer || m.Layers[1].MediaType != types.OCILayer {
		t.Errorf("manifest %+v; want OCI media types", m)
	}
	r4, err := Archive(filepath.Join(dir, "docker.tar"), filepath.Join(dir, "out4"))
	must(t, err)
	if r3 != r4 {
		t.Errorf("converting twice: %v and %v", r3, r4)
	}
	verifyBlobs(t, filepath.Join(dir, "out3"))

	// Two images: an error naming both.
	p, err := ggcrlayout.FromPath(lay)
	must(t, err)
	other := ociImage(t, "second")
	must(t, p.AppendImage(other))
	otherDigest, _ := other.Digest()
	tarDir(t, lay, filepath.Join(dir, "two.tar"))
	if _, err := Archive(filepath.Join(dir, "two.tar"), filepath.Join(dir, "out5")); err == nil || !strings.Contains(err.Error(), want.String()) || !strings.Contains(err.Error(), otherDigest.String()) {
		t.Errorf("two images: %v; want an error listing both digests", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out5")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Archive left its output: %v", err)
	}
	if _, err := Archive(filepath.Join(lay, "index.json"), filepath.Join(dir, "out6")); err == nil {
		t.Error("a file that is no tarball: no error")
	}
}

func TestPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	img := ociImage(t, "pulled")
	tag, err := name.ParseReference(host + "/lego/base:v1")
	must(t, err)
	must(t, remote.Write(tag, img))
	d, err := img.Digest()
	must(t, err)
	ref := host + "/lego/base@" + d.String()

	out := filepath.Join(t.TempDir(), "out")
	res, err := Pull(ctx, ref, out)
	must(t, err)
	got, err := ReadManifest(out)
	must(t, err)
	if got.Digest != d.String() || res != got {
		t.Errorf("pulled %v, read back %v; pushed %s", res, got, d)
	}
	verifyBlobs(t, out)

	// A Docker-typed image is stored with OCI media types, the same way
	// each time.
	dimg := baseImage(t)
	dtag, err := name.ParseReference(host + "/lego/docker:v1")
	must(t, err)
	must(t, remote.Write(dtag, dimg))
	dd, _ := dimg.Digest()
	dref := host + "/lego/docker@" + dd.String()
	a, err := Pull(ctx, dref, t.TempDir())
	must(t, err)
	b, err := Pull(ctx, dref, t.TempDir())
	must(t, err)
	if a != b || a.Digest == dd.String() {
		t.Errorf("docker image pulled as %v and %v (pushed %s); want one OCI digest", a, b, dd)
	}

	if _, err := Pull(ctx, host+"/lego/base:v1", t.TempDir()); err == nil || !strings.Contains(err.Error(), "pinning is required") {
		t.Errorf("tag ref: %v; want an error saying pinning is required", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := l.Addr().String()
	l.Close()
	badRef := closed + "/lego/base@" + d.String()
	failed := filepath.Join(t.TempDir(), "failed")
	_, err = Pull(ctx, badRef, failed)
	if err == nil || !strings.Contains(err.Error(), badRef) || !strings.Contains(err.Error(), "could not be reached") {
		t.Errorf("unreachable registry: %v; want an error naming %s", err, badRef)
	}
	if _, err := os.Stat(failed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Pull left its output: %v", err)
	}
}

func TestDebian(t *testing.T) {
	out := filepath.Join(t.TempDir(), "debian")
	tmp := t.TempDir()
	var log bytes.Buffer
	start := time.Now()
	res, err := Debian(context.Background(), out, DebianOptions{Suite: "bookworm", TempDir: tmp, Log: &log})
	if err != nil {
		t.Fatalf("%v\ndebootstrap output:\n%s", err, tail(log.String(), 3000))
	}
	t.Logf("debootstrap + pack: %v", time.Since(start))
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("rootfs temp dir not removed: %v", left)
	}
	if got, err := ReadManifest(out); err != nil || got != res {
		t.Fatalf("ReadManifest = %v, %v; Debian said %v", got, err, res)
	}
	verifyBlobs(t, out)
	img, _, err := readImage(out)
	must(t, err)
	m, err := img.Manifest()
	must(t, err)
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCIUncompressedLayer || m.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("manifest %+v; want one uncompressed OCI layer", m)
	}
	cfg, err := img.ConfigFile()
	must(t, err)
	if cfg.OS != "linux" || !reflect.DeepEqual(cfg.Config.Cmd, []string{"/bin/bash"}) || !reflect.DeepEqual(cfg.Config.Env, []string{debianPath}) || !cfg.Created.Time.Equal(Epoch) {
		t.Errorf("config %+v", cfg)
	}
	f, err := os.Open(filepath.Join(out, "blobs/sha256", m.Layers[0].Digest.Hex))
	must(t, err)
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	var size int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names[hdr.Name] = true
		size += hdr.Size
		if !hdr.ModTime.Equal(Epoch) {
			t.Fatalf("%s: mtime %v, want Epoch", hdr.Name, hdr.ModTime)
		}
		if strings.HasPrefix(hdr.Name, "var/lib/apt/lists/") && hdr.Name != "var/lib/apt/lists/" {
			t.Errorf("apt list %s left in the image", hdr.Name)
		}
		if strings.HasPrefix(hdr.Name, "var/cache/apt/") && hdr.Typeflag != tar.TypeDir || hdr.Name == "var/cache/ldconfig/aux-cache" {
			t.Errorf("cache file %s left in the image", hdr.Name)
		}
	}
	t.Logf("layer: %d entries, %d MB of file data", len(names), size>>20)
	if !names["usr/bin/bash"] && !names["bin/bash"] {
		t.Error("no bash in the image")
	}
	if !names["etc/debian_version"] {
		t.Error("no etc/debian_version in the image")
	}
}

// baseImage is a small Docker-typed image of two layers (one uncompressed,
// one gzip): bin a symlink to usr/bin, tmp sticky, opt created then
// whited out, config with env and cmd.
func baseImage(t *testing.T) v1.Image {
	t.Helper()
	l1 := static.NewLayer(mkTar(t, []tarEntry{
		{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin", Linkname: "usr/bin", Mode: 0o777}},
		{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "opt/", Mode: 0o755}},
		{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o755}},
		{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "usr/bin/", Mode: 0o755}},
		{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/sh", Mode: 0o755}, body: []byte("#!sh")},
	}, nil), types.DockerUncompressedLayer)
	l2tar := mkTar(t, []tarEntry{
		{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: ".wh.opt", Mode: 0o644}},
		{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "etc/os-release", Mode: 0o644}, body: []byte("ID=test\n")},
	}, nil)
	l2, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l2tar)), nil })
	must(t, err)
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	must(t, err)
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/bin", "HOME=/root"}, Cmd: []string{"sh"}})
	must(t, err)
	return img
}

// ociImage is a one-layer image with OCI media types; seed varies it.
func ociImage(t *testing.T, seed string) v1.Image {
	t.Helper()
	l := static.NewLayer(mkTar(t, []tarEntry{
		{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "seed", Mode: 0o644}, body: []byte(seed)},
	}, nil), types.OCIUncompressedLayer)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, l)
	must(t, err)
	return img
}

func writeTestLayout(t *testing.T, dir string, img v1.Image) {
	t.Helper()
	p, err := ggcrlayout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendImage(img))
}

// verifyBlobs checks that every blob of the layout at dir hashes to its
// name, which is what containerd and lego's CAS key it by.
func verifyBlobs(t *testing.T, dir string) {
	t.Helper()
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs/sha256"))
	must(t, err)
	for _, b := range blobs {
		f, err := os.Open(filepath.Join(dir, "blobs/sha256", b.Name()))
		must(t, err)
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		must(t, err)
		if got := hex.EncodeToString(h.Sum(nil)); got != b.Name() {
			t.Errorf("blob %s hashes to %s", b.Name(), got)
		}
	}
}

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

// mkTar writes entries (times Epoch unless edit changes them) to a tar.
func mkTar(t *testing.T, entries []tarEntry, edit func(*tar.Header)) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := *e.hdr
		h.ModTime = Epoch
		h.Size = int64(len(e.body))
		if edit != nil {
			edit(&h)
		}
		must(t, tw.WriteHeader(&h))
		_, err := tw.Write(e.body)
		must(t, err)
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		body, err := io.ReadAll(tr)
		must(t, err)
		out = append(out, tarEntry{hdr: hdr, body: body})
	}
}

func entryNames(entries []tarEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.hdr.Name)
	}
	return out
}

// untar unpacks the regular files, directories, symlinks and hard links of
// a tar under dir.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	for _, e := range readTar(t, r) {
		p := filepath.Join(dir, e.hdr.Name)
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			must(t, os.MkdirAll(p, 0o755))
		case tar.TypeReg:
			must(t, os.WriteFile(p, e.body, 0o644))
		case tar.TypeSymlink:
			must(t, os.Symlink(e.hdr.Linkname, p))
		case tar.TypeLink:
			must(t, os.Link(filepath.Join(dir, e.hdr.Linkname), p))
		}
	}
}

// tarDir packs the files under dir into a tar at dst, as `tar -C dir -cf
// dst .` would.
func tarDir(t *testing.T, dir, dst string) {
	t.Helper()
	f, err := os.Create(dst)
	must(t, err)
	defer f.Close()
	tw := tar.NewWriter(f)
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	}))
	must(t, tw.Close())
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

func mkfile(t *testing.T, p, content string, mode os.FileMode) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
