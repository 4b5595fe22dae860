package executors

import (
	"errors"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

type blobs map[string][]byte

func (b blobs) Get(d *repb.Digest) ([]byte, error) {
	if v, ok := b[d.Hash]; ok {
		return v, nil
	}
	return nil, errors.New("not found")
}

func TestTail(t *testing.T) {
	s := blobs{"log": []byte("one\ntwo\nthree\n"), "nonl": []byte("a\nb"), "single": []byte("x")}
	for _, tc := range []struct {
		hash string
		n    int
		want string
	}{
		{"log", 2, "two\nthree"},
		{"log", 3, "one\ntwo\nthree"},
		{"log", 10, "one\ntwo\nthree"},
		{"log", 1, "three"},
		{"nonl", 1, "b"},
		{"single", 5, "x"},
		{"log", 0, ""},
	} {
		got, err := Tail(s, &repb.Digest{Hash: tc.hash, SizeBytes: int64(len(s[tc.hash]))}, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("Tail(%s, %d) = %q, %v; want %q", tc.hash, tc.n, got, err, tc.want)
		}
	}
	if got, err := Tail(s, nil, 3); got != "" || err != nil {
		t.Errorf("nil digest: %q, %v", got, err)
	}
	if _, err := Tail(s, &repb.Digest{Hash: "missing", SizeBytes: 1}, 3); err == nil {
		t.Errorf("missing blob: no error")
	}
}
