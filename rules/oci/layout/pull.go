package layout

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Pull fetches ref, which must be pinned by digest (name@sha256:...), and
// writes it as a layout at out. A digest naming a multi-platform index gives
// its linux/GOARCH image. An image with Docker media types is rewritten
// under an OCI manifest (same config and layer blobs), so the Result's
// digest is then not the one in ref; it is as reproducible.
// Credentials come from the docker config, as for docker pull.
func Pull(ctx context.Context, ref, out string) (Result, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		if !strings.Contains(ref, "@") {
			return Result{}, fmt.Errorf("pull %s: the image must be pinned by digest (name@sha256:...), pinning is required for reproducibility", ref)
		}
		return Result{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	res, err := build(out, func() (v1.Image, error) {
		img, err := remote.Image(d,
			remote.WithContext(ctx),
			remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
		if err != nil {
			return nil, fetchError{err}
		}
		return toOCI(img)
	})
	if err != nil {
		// Layers are fetched lazily while the layout is written, so a
		// network error may surface there too.
		var ue *url.Error
		var te *transport.Error
		if errors.As(err, &fetchError{}) || errors.As(err, &ue) || errors.As(err, &te) {
			return Result{}, fmt.Errorf("pull %s: the registry could not be reached (lego may be offline): %w", ref, err)
		}
		return Result{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return res, nil
}

// fetchError marks an error from the registry.
type fetchError struct{ err error }

func (e fetchError) Error() string { return e.err.Error() }
func (e fetchError) Unwrap() error { return e.err }
