package cas

import (
	"os"
	"path/filepath"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

func actionKey(name string) *repb.Digest { return DigestOf([]byte("action:" + name)) }

func TestActionResultRoundTrip(t *testing.T) {
	s := newMemDisk(t)
	key := actionKey("a")
	if r, l, err := s.GetActionResult(bg, key); r != nil || l != Miss || err != nil {
		t.Fatalf("absent entry: %v, %v", r, err)
	}
	out := mustPut(t, s.disk, []byte("out"))
	want := &repb.ActionResult{
		OutputFiles:  []*repb.OutputFile{{Path: "o", Digest: out, IsExecutable: true}},
		ExitCode:     0,
		StdoutDigest: DigestOf(nil),
	}
	if err := s.PutActionResult(bg, key, want, Here); err != nil {
		t.Fatal(err)
	}
	// Changing the caller's message must not change what is cached.
	want2 := proto.Clone(want).(*repb.ActionResult)
	want.ExitCode = 9
	for i := 0; i < 3; i++ {
		got, l, err := s.GetActionResult(bg, key)
		if err != nil || !proto.Equal(got, want2) || (i > 0 && l != InMemory) {
			t.Fatalf("Get #%d = %v, %v, %v; want the result from memory", i, got, l, err)
		}
		s.wait()
	}
	// Another process sees the entry, and a replacement.
	other := openDisk(t, s.disk.Dir())
	if got, l, _ := other.GetActionResult(bg, key); !proto.Equal(got, want2) || l != OnDisk {
		t.Errorf("second Disk got %v", got)
	}
	want2.ExitCode = 1
	if err := other.PutActionResult(bg, key, want2, Here); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := openDisk(t, s.disk.Dir()).GetActionResult(bg, key); !proto.Equal(got, want2) {
		t.Errorf("replacement not visible: %v", got)
	}
	if _, _, err := s.GetActionResult(bg, &repb.Digest{Hash: "../x"}); err == nil {
		t.Error("invalid key accepted")
	}
}

func TestActionResultCorrupt(t *testing.T) {
	badDigest, _ := proto.Marshal(&repb.ActionResult{StdoutDigest: &repb.Digest{Hash: "nothex", SizeBytes: 1}})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("\xff\xff\xff\xff garbage")},
		{"truncated", func() []byte {
			b, _ := proto.Marshal(&repb.ActionResult{OutputFiles: []*repb.OutputFile{{Path: "long/path/name", Digest: DigestOf([]byte("x"))}}})
			return b[:len(b)-5]
		}()},
		{"invalid digest", badDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newDisk(t)
			key := actionKey(tc.name)
			p := filepath.Join(s.Dir(), "ac", key.Hash[:2], key.Hash)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if r, _, err := s.GetActionResult(bg, key); r != nil || err != nil {
				t.Fatalf("corrupt entry: %v, %v; want nil, nil", r, err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Error("corrupt entry not removed")
			}
		})
	}
}

// A GC in another process invalidates this one's memory layer at its
// next lock.
func TestActionResultMemoryAfterGC(t *testing.T) {
	a := newMemDisk(t)
	b := openDisk(t, a.disk.Dir())
	key := actionKey("x")
	a.PutActionResult(bg, key, &repb.ActionResult{ExitCode: 3}, Here)
	if r, _, _ := a.GetActionResult(bg, key); r == nil {
		t.Fatal("missing")
	}
	a.wait()

	unlock, err := b.LockExclusive()
	if err != nil {
		t.Fatal(err)
	}
	if st, err := b.GC(0); err != nil || st.RemovedActions != 1 {
		t.Fatalf("GC: %+v %v", st, err)
	}
	unlock()

	unlock, err = a.disk.LockShared()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if r, _, err := a.GetActionResult(bg, key); r != nil || err != nil {
		t.Errorf("entry removed by GC still served: %v %v", r, err)
	}
}
