// Package cas is lego's content-addressed store: blobs keyed by sha256
// digest, an action cache of REAPI ActionResults, a usage journal for LRU
// garbage collection, and a file-digest cache that spares re-hashing
// unchanged source files.
package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"github.com/opencontainers/go-digest"
)

var (
	// ErrNotFound is wrapped by errors for blobs that are not in the store.
	ErrNotFound = errors.New("blob not found")
	// ErrCorrupt is wrapped by errors for stored content that does not match
	// its digest; the corrupt entry has been removed when it is returned.
	ErrCorrupt = errors.New("corrupt blob")
	// ErrInvalidDigest is wrapped by errors for malformed digests.
	ErrInvalidDigest = errors.New("invalid digest")
)

// emptyHash is the sha256 of no bytes; the empty blob is always present.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// DigestOf returns the sha256 digest of b.
func DigestOf(b []byte) *repb.Digest {
	sum := sha256.Sum256(b)
	return &repb.Digest{Hash: hex.EncodeToString(sum[:]), SizeBytes: int64(len(b))}
}

// Key returns d as "hash/size", the form REAPI uses in resource names; it
// is comparable and so serves as a map key.
func Key(d *repb.Digest) string {
	if d == nil {
		return ""
	}
	return d.Hash + "/" + strconv.FormatInt(d.SizeBytes, 10)
}

// Validate reports whether d is a well-formed sha256 digest.
func Validate(d *repb.Digest) error {
	if d == nil {
		return fmt.Errorf("%w: nil", ErrInvalidDigest)
	}
	if err := digest.NewDigestFromEncoded(digest.SHA256, d.Hash).Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidDigest, d.Hash, err)
	}
	if d.SizeBytes < 0 {
		return fmt.Errorf("%w: negative size %d", ErrInvalidDigest, d.SizeBytes)
	}
	return nil
}

// check is Validate for hot paths: go-digest's check runs a regexp, this
// is a plain loop that accepts exactly the same strings (64 lowercase hex).
// It also guards every path built from a hash against traversal.
func check(d *repb.Digest) error {
	if d == nil || !validHash(d.Hash) || d.SizeBytes < 0 {
		return Validate(d)
	}
	return nil
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// sumMatches compares a raw sum with a hex hash without allocating.
func sumMatches(sum []byte, h string) bool {
	var buf [2 * sha256.Size]byte
	if len(sum) != sha256.Size {
		return false
	}
	hex.Encode(buf[:], sum)
	return string(buf[:]) == h
}

// isEmpty reports whether d names the empty blob.
func isEmpty(d *repb.Digest) bool {
	return d.SizeBytes == 0 && d.Hash == emptyHash
}
