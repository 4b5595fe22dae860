// Package layout builds container images as OCI image layouts on disk: a
// Debian base from debootstrap, images loaded from tarballs or pulled by
// digest, and images extended with files, layers and config changes.
//
// Every layout it writes holds exactly one image, with OCI media types, and
// is identified by that image's manifest digest. Layers are uncompressed
// where lego makes them, and all timestamps it sets are Epoch, so the same
// inputs give the same digest on every machine.
package layout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Result identifies an image: its manifest digest ("sha256:<hex>") and the
// manifest's size in bytes.
type Result struct {
	Digest string
	Size   int64
}

// Epoch is the fixed time every file and config timestamp gets, so that
// layers are byte-for-byte reproducible.
var Epoch = time.Unix(0, 0).UTC()

// ReadManifest returns the Result of the single image in the layout at dir.
// It checks the manifest blob against its digest and size.
func ReadManifest(dir string) (Result, error) {
	_, desc, err := readImage(dir)
	if err != nil {
		return Result{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", desc.Digest.Algorithm, desc.Digest.Hex))
	if err != nil {
		return Result{}, fmt.Errorf("read manifest of layout %s: %w", dir, err)
	}
	sum := sha256.Sum256(b)
	if desc.Digest.Algorithm != "sha256" || hex.EncodeToString(sum[:]) != desc.Digest.Hex || int64(len(b)) != desc.Size {
		return Result{}, fmt.Errorf("layout %s: manifest blob does not match its descriptor %s (%d bytes)", dir, desc.Digest, desc.Size)
	}
	return Result{Digest: desc.Digest.String(), Size: desc.Size}, nil
}

// readImage opens the one image of the layout at dir.
func readImage(dir string) (v1.Image, v1.Descriptor, error) {
	p, err := ggcrlayout.FromPath(dir)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("open layout %s: %w", dir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("open layout %s: %w", dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("read index of layout %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, v1.Descriptor{}, fmt.Errorf("layout %s holds %d manifests, want exactly one image", dir, len(im.Manifests))
	}
	desc := im.Manifests[0]
	if !desc.MediaType.IsImage() {
		return nil, v1.Descriptor{}, fmt.Errorf("layout %s: %s is a %s, not an image", dir, desc.Digest, desc.MediaType)
	}
	img, err := ii.Image(desc.Digest)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("open image %s in layout %s: %w", desc.Digest, dir, err)
	}
	return img, desc, nil
}

// build writes the image that mk returns as a single-image layout at out.
// out must be absent or empty; mk may spool layer blobs straight into
// blobsDir(out) so that big layers are written once and never copied. On
// error out is left as it was found (removed, or emptied).
func build(out string, mk func() (v1.Image, error)) (res Result, err error) {
	entries, err := os.ReadDir(out)
	existed := err == nil
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return Result{}, err
	case len(entries) > 0:
		return Result{}, fmt.Errorf("output %s is not empty", out)
	}
	defer func() {
		if err == nil {
			return
		}
		if !existed {
			os.RemoveAll(out)
			return
		}
		entries, _ := os.ReadDir(out)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(out, e.Name()))
		}
	}()
	if err := os.MkdirAll(blobsDir(out), 0o755); err != nil {
		return Result{}, err
	}
	img, err := mk()
	if err != nil {
		return Result{}, err
	}
	p, err := ggcrlayout.Write(out, empty.Index)
	if err != nil {
		return Result{}, fmt.Errorf("write layout %s: %w", out, err)
	}
	if err := p.AppendImage(img); err != nil {
		return Result{}, fmt.Errorf("write layout %s: %w", out, err)
	}
	return ReadManifest(out)
}

func blobsDir(out string) string { return filepath.Join(out, "blobs", "sha256") }

// image is a v1.Image whose manifest and config bytes lego wrote itself, so
// that nothing (field order, media types, timestamps) is left to a library.
type image struct {
	config   []byte
	manifest []byte
	layers   map[v1.Hash]v1.Layer
}

// newImage makes an OCI image of config (raw JSON, kept byte for byte) and
// layers. Docker layer media types are mapped to their OCI equivalents; the
// blobs are unchanged.
func newImage(config []byte, layers []v1.Layer) (v1.Image, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType: types.OCIConfigJSON,
			Size:      int64(len(config)),
			Digest:    sha256Hash(config),
		},
		Layers: []v1.Descriptor{},
	}
	byDigest := map[v1.Hash]v1.Layer{}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: ociMediaType(mt), Size: size, Digest: d})
		byDigest[d] = l
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&image{config: config, manifest: raw, layers: byDigest})
}

// newImageFromConfig is newImage for a config lego edits, with its rootfs
// set from the layers' diff IDs.
func newImageFromConfig(cfg *v1.ConfigFile, layers []v1.Layer) (v1.Image, error) {
	cfg.RootFS = v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}}
	for _, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return newImage(raw, layers)
}

func (i *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}

// toOCI returns img unchanged when it already uses OCI media types only, and
// otherwise the same config and layer blobs under an OCI manifest (whose
// digest then differs from the original's).
func toOCI(img v1.Image) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	oci := m.MediaType == types.OCIManifestSchema1 && m.Config.MediaType == types.OCIConfigJSON
	for _, l := range m.Layers {
		oci = oci && ociMediaType(l.MediaType) == l.MediaType
	}
	if oci {
		return img, nil
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	return newImage(config, layers)
}

// ociMediaType maps Docker layer media types to OCI ones; a containerd that
// imports OCI layouts expects them, and the blob formats are the same.
func ociMediaType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// fileLayer is a layer whose blob is a file already hashed on disk, so that
// writing it into a layout is a copy at most, never a recompression.
type fileLayer struct {
	path      string
	digest    v1.Hash // of the blob
	diffID    v1.Hash // of the uncompressed tar
	size      int64
	mediaType types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	if l.mediaType != types.OCILayer {
		return f, nil
	}
	return gunzipCloser(f)
}

// spoolLayer streams the tar that write produces into dir, hashing it on the
// way, and names the file by its digest: a rootfs layer is hundreds of MB and
// must never sit in memory.
func spoolLayer(dir string, write func(io.Writer) error) (*fileLayer, error) {
	f, err := os.CreateTemp(dir, ".layer-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := write(cw); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	path := filepath.Join(dir, d.Hex)
	if err := os.Rename(f.Name(), path); err != nil {
		return nil, err
	}
	return &fileLayer{path: path, digest: d, diffID: d, size: cw.n, mediaType: types.OCIUncompressedLayer}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// hostLayer makes a layer of the tar file at path, gzip-compressed or not
// (told by its magic bytes); the blob is the file itself.
func hostLayer(path string) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	magic := make([]byte, 2)
	n, _ := io.ReadFull(f, magic)
	gzipped := bytes.Equal(magic[:n], []byte{0x1f, 0x8b})
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", path, err)
	}
	l := &fileLayer{path: path, size: size, mediaType: types.OCIUncompressedLayer}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	l.diffID = l.digest
	if gzipped {
		l.mediaType = types.OCILayer
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		h.Reset()
		if _, err := io.Copy(h, rc); err != nil {
			return nil, fmt.Errorf("decompress layer %s: %w", path, err)
		}
		l.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	}
	return l, nil
}
