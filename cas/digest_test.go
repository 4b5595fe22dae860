package cas

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

func TestDigestOf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		hash string
	}{
		{"", emptyHash},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	} {
		d := DigestOf([]byte(tc.in))
		if d.Hash != tc.hash || d.SizeBytes != int64(len(tc.in)) {
			t.Errorf("DigestOf(%q) = %v, want %s/%d", tc.in, d, tc.hash, len(tc.in))
		}
		if got, want := Key(d), tc.hash+"/"+strconv.Itoa(len(tc.in)); got != want {
			t.Errorf("Key = %q, want %q", got, want)
		}
	}
	if Key(nil) != "" {
		t.Error("Key(nil) should be empty")
	}
}

func TestValidate(t *testing.T) {
	good := DigestOf([]byte("x")).Hash
	for _, tc := range []struct {
		name string
		d    *repb.Digest
		ok   bool
	}{
		{"valid", &repb.Digest{Hash: good, SizeBytes: 1}, true},
		{"zero size", &repb.Digest{Hash: emptyHash}, true},
		{"nil", nil, false},
		{"empty hash", &repb.Digest{}, false},
		{"uppercase", &repb.Digest{Hash: strings.ToUpper(good), SizeBytes: 1}, false},
		{"short", &repb.Digest{Hash: good[:63], SizeBytes: 1}, false},
		{"long", &repb.Digest{Hash: good + "0", SizeBytes: 1}, false},
		{"non-hex", &repb.Digest{Hash: "g" + good[1:], SizeBytes: 1}, false},
		{"traversal", &repb.Digest{Hash: "../../../../etc/passwd" + good[22:], SizeBytes: 1}, false},
		{"negative size", &repb.Digest{Hash: good, SizeBytes: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.d)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("error %v does not wrap ErrInvalidDigest", err)
			}
			// The fast hot-path check must agree with go-digest.
			if (check(tc.d) == nil) != tc.ok {
				t.Errorf("check disagrees with Validate")
			}
		})
	}
}
