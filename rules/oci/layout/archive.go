package layout

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Archive loads a docker-save tarball (manifest.json at its root) or an OCI
// layout tarball (oci-layout + index.json), either possibly gzipped, and
// writes it as a layout at out. A tarball that is both (docker 25 and later
// save both) is read as OCI, which keeps its manifest digest. An archive
// holding several images is an error listing them.
//
// The layers of a docker-save tarball are stored uncompressed, as docker
// wrote them; an OCI tarball's blobs are kept byte for byte.
func Archive(src, out string) (Result, error) {
	index, err := tarIndex(src)
	if err != nil {
		return Result{}, fmt.Errorf("read archive %s: %w", src, err)
	}
	var res Result
	switch {
	case index["oci-layout"] != nil && index["index.json"] != nil:
		res, err = archiveOCI(src, out)
	case index["manifest.json"] != nil:
		res, err = archiveDocker(src, out, index)
	default:
		return Result{}, fmt.Errorf("archive %s is neither a docker-save tarball (no manifest.json) nor an OCI layout tarball (no oci-layout and index.json)", src)
	}
	if err != nil {
		return Result{}, fmt.Errorf("load archive %s: %w", src, err)
	}
	return res, nil
}

// openArchive opens src, decompressing it if it is gzipped.
func openArchive(src string) (io.ReadCloser, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return struct {
			io.Reader
			io.Closer
		}{br, f}, nil
	}
	zr, err := gunzipCloser(struct {
		io.Reader
		io.Closer
	}{br, f})
	if err != nil {
		return nil, err
	}
	return zr, nil
}

// tarIndex returns the headers of the tar at src by cleaned entry name.
func tarIndex(src string) (map[string]*tar.Header, error) {
	rc, err := openArchive(src)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	index := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return index, nil
		}
		if err != nil {
			return nil, err
		}
		index[cleanName(hdr.Name)] = hdr
	}
}

// eachEntry calls f for the entries of the tar at src that want selects,
// with the entry's contents to read.
func eachEntry(src string, want func(name string) bool, f func(name string, r io.Reader) error) error {
	rc, err := openArchive(src)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n := cleanName(hdr.Name); hdr.Typeflag == tar.TypeReg && want(n) {
			if err := f(n, tr); err != nil {
				return err
			}
		}
	}
}

// resolve follows the symlinks and hard links by which docker save shares
// one layer file between images, to the regular file holding the data.
func resolve(index map[string]*tar.Header, name string) (string, error) {
	for range 16 {
		hdr, ok := index[name]
		switch {
		case !ok:
			return "", fmt.Errorf("no %s in the tarball", name)
		case hdr.Typeflag == tar.TypeReg:
			return name, nil
		case hdr.Typeflag == tar.TypeSymlink:
			name = cleanName(path.Join(path.Dir(name), hdr.Linkname))
		case hdr.Typeflag == tar.TypeLink:
			name = cleanName(hdr.Linkname)
		default:
			return "", fmt.Errorf("%s in the tarball is not a file", name)
		}
	}
	return "", fmt.Errorf("%s: too many links", name)
}

// archiveDocker reads the docker save format itself rather than through
// ggcr's tarball package, which guesses every layer's compression from the
// first one: each layer is checked on its own, decompressed if gzipped, and
// stored uncompressed in one pass over the tarball.
func archiveDocker(src, out string, index map[string]*tar.Header) (Result, error) {
	var raw []byte
	err := eachEntry(src, func(n string) bool { return n == "manifest.json" }, func(_ string, r io.Reader) (err error) {
		raw, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	var m tarball.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return Result{}, fmt.Errorf("parse manifest.json: %w", err)
	}
	if len(m) != 1 {
		var list []string
		for _, d := range m {
			list = append(list, fmt.Sprintf("%s (%s)", d.Config, strings.Join(d.RepoTags, ", ")))
		}
		return Result{}, fmt.Errorf("it holds %d images, want one: %s", len(m), strings.Join(list, "; "))
	}
	configName, err := resolve(index, cleanName(m[0].Config))
	if err != nil {
		return Result{}, err
	}
	files := make([]string, len(m[0].Layers))
	want := map[string]bool{}
	for i, l := range m[0].Layers {
		if files[i], err = resolve(index, cleanName(l)); err != nil {
			return Result{}, err
		}
		want[files[i]] = true
	}
	return build(out, func() (v1.Image, error) {
		var config []byte
		spooled := map[string]*fileLayer{}
		err := eachEntry(src, func(n string) bool { return n == configName || want[n] }, func(n string, r io.Reader) (err error) {
			if n == configName {
				config, err = io.ReadAll(r)
				if !want[n] {
					return err
				}
				r = bytes.NewReader(config)
			}
			spooled[n], err = spoolLayer(blobsDir(out), func(w io.Writer) error { return copyUncompressed(w, r) })
			return err
		})
		if err != nil {
			return nil, err
		}
		var cfg v1.ConfigFile
		if err := json.Unmarshal(config, &cfg); err != nil {
			return nil, fmt.Errorf("parse config %s: %w", configName, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(files) {
			return nil, fmt.Errorf("config lists %d layers, manifest.json %d", len(cfg.RootFS.DiffIDs), len(files))
		}
		var layers []v1.Layer
		for i, f := range files {
			// The config names each layer by its content; a layer that
			// does not match is a damaged tarball, not an image.
			if l := spooled[f]; l.diffID != cfg.RootFS.DiffIDs[i] {
				return nil, fmt.Errorf("layer %s is %s, its config says %s", f, l.diffID, cfg.RootFS.DiffIDs[i])
			}
			layers = append(layers, spooled[f])
		}
		return newImage(config, layers)
	})
}

// copyUncompressed copies r to w, decompressing it if it is gzipped.
func copyUncompressed(w io.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, zr)
		return err
	}
	_, err := io.Copy(w, br)
	return err
}

func archiveOCI(src, out string) (Result, error) {
	// Extract next to out: the blobs are then on the same file system and
	// the temporary copy is gone when we return.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Result{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".lego-oci-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	if err := extractLayout(src, tmp); err != nil {
		return Result{}, err
	}
	p, err := ggcrlayout.FromPath(tmp)
	if err != nil {
		return Result{}, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return Result{}, err
	}
	imgs, err := listImages(ii)
	if err != nil {
		return Result{}, err
	}
	if len(imgs) != 1 {
		var list []string
		for _, d := range imgs {
			s := d.Digest.String()
			if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" {
				s += " (" + n + ")"
			}
			if d.Platform != nil {
				s += " " + d.Platform.String()
			}
			list = append(list, s)
		}
		return Result{}, fmt.Errorf("it holds %d images, want one: %s", len(imgs), strings.Join(list, "; "))
	}
	return build(out, func() (v1.Image, error) {
		img, err := imgs[0].open()
		if err != nil {
			return nil, err
		}
		return toOCI(img)
	})
}

type indexedImage struct {
	v1.Descriptor
	open func() (v1.Image, error)
}

// listImages returns the images of an index, looking into nested indexes
// and leaving out buildkit's attestation manifests, which are not images
// one can run.
func listImages(ii v1.ImageIndex) ([]indexedImage, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []indexedImage
	for _, d := range im.Manifests {
		switch {
		case d.Annotations["vnd.docker.reference.type"] == "attestation-manifest":
		case d.MediaType.IsImage():
			h := d.Digest
			out = append(out, indexedImage{Descriptor: d, open: func() (v1.Image, error) { return ii.Image(h) }})
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			more, err := listImages(child)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

// extractLayout writes the layout files of the tar at src under dir:
// regular files named oci-layout, index.json or blobs/..., nothing else, so
// a hostile archive cannot write outside dir.
func extractLayout(src, dir string) error {
	isLayout := func(n string) bool { return n == "oci-layout" || n == "index.json" || strings.HasPrefix(n, "blobs/") }
	return eachEntry(src, isLayout, func(n string, r io.Reader) error {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(f, h), r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		// Blobs are trusted by name from here on (they are copied into the
		// output as they are), so check each name against its content.
		if hexName, ok := strings.CutPrefix(n, "blobs/sha256/"); ok && hex.EncodeToString(h.Sum(nil)) != hexName {
			return fmt.Errorf("blob %s does not match its digest", n)
		}
		return nil
	})
}
