package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/legobuild/lego/cas"
)

// importOnce imports one image once per process, however many actions
// use it at the same time.
type importOnce struct {
	once sync.Once
	img  ctrd.Image
	err  error
}

// ImageName is the containerd image name lego gives an image.
func ImageName(manifest string) string { return "lego.local/image@" + manifest }

// image returns the unpacked containerd image of the manifest, importing
// its blobs from the CAS first when containerd lacks them.
func (r *runner) image(ctx context.Context, manifest string, size int64) (ctrd.Image, error) {
	r.mu.Lock()
	o := r.imports[manifest]
	if o == nil {
		o = &importOnce{}
		r.imports[manifest] = o
	}
	r.mu.Unlock()
	o.once.Do(func() { o.img, o.err = r.importImage(ctx, manifest, size) })
	if o.err != nil {
		r.mu.Lock()
		delete(r.imports, manifest) // let a later action try again
		r.mu.Unlock()
	}
	return o.img, o.err
}

func (r *runner) importImage(ctx context.Context, manifest string, size int64) (ctrd.Image, error) {
	dg, err := godigest.Parse(manifest)
	if err != nil || dg.Algorithm() != godigest.SHA256 {
		return nil, fmt.Errorf("bad image digest %q", manifest)
	}
	name := ImageName(manifest)
	is := r.client.ImageService()
	if rec, err := is.Get(ctx, name); err == nil {
		img := ctrd.NewImage(r.client, rec)
		if ok, err := img.IsUnpacked(ctx, Snapshotter); err == nil && ok {
			return img, nil
		}
	}
	// A lease keeps the blobs written below from containerd's garbage
	// collector until the image record refers to them.
	ctx, done, err := r.client.WithLease(ctx)
	if err != nil {
		return nil, err
	}
	defer done(context.WithoutCancel(ctx))

	mb, err := r.store.Get(&repb.Digest{Hash: dg.Encoded(), SizeBytes: size})
	if err != nil {
		if errors.Is(err, cas.ErrNotFound) {
			return nil, fmt.Errorf("image manifest %s is not in the cache: build the image's target first", manifest)
		}
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("image manifest %s: %w", manifest, err)
	}
	if m.Config.Digest == "" {
		return nil, fmt.Errorf("image manifest %s has no config", manifest)
	}
	labels := map[string]string{"containerd.io/gc.ref.content.config": m.Config.Digest.String()}
	if err := r.putBlob(ctx, m.Config); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		if err := r.putBlob(ctx, l); err != nil {
			return nil, err
		}
		labels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = l.Digest.String()
	}
	mt := m.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(mb))}
	cs := r.client.ContentStore()
	if err := content.WriteBlob(ctx, cs, "lego-"+manifest, bytes.NewReader(mb), desc, content.WithLabels(labels)); err != nil && !errdefs.IsAlreadyExists(err) {
		return nil, fmt.Errorf("importing manifest: %w", err)
	}
	rec := images.Image{Name: name, Target: desc}
	if _, err := is.Create(ctx, rec); err != nil {
		if !errdefs.IsAlreadyExists(err) {
			return nil, fmt.Errorf("registering image: %w", err)
		}
		if _, err := is.Update(ctx, rec); err != nil {
			return nil, fmt.Errorf("registering image: %w", err)
		}
	}
	img := ctrd.NewImage(r.client, rec)
	if err := img.Unpack(ctx, Snapshotter); err != nil {
		return nil, fmt.Errorf("unpacking image %s: %w", manifest, err)
	}
	return img, nil
}

// putBlob copies a blob from the CAS into containerd's content store.
func (r *runner) putBlob(ctx context.Context, desc ocispec.Descriptor) error {
	cs := r.client.ContentStore()
	if _, err := cs.Info(ctx, desc.Digest); err == nil {
		return nil
	}
	if desc.Digest.Algorithm() != godigest.SHA256 {
		return fmt.Errorf("image blob %s: only sha256 digests are supported", desc.Digest)
	}
	p, err := r.store.BlobPath(&repb.Digest{Hash: desc.Digest.Encoded(), SizeBytes: desc.Size}, false)
	if err != nil {
		return fmt.Errorf("image blob %s is not in the cache (%w): rebuild the image's target", desc.Digest, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	ref := "lego-" + strings.ReplaceAll(desc.Digest.String(), ":", "-")
	if err := content.WriteBlob(ctx, cs, ref, f, desc); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("importing blob %s: %w", desc.Digest, err)
	}
	return nil
}
