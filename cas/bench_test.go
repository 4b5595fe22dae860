package cas

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

// benchActions stores n action results shaped like a build's.
func benchActions(b *testing.B, s *Disk, n int) []*repb.Digest {
	keys := make([]*repb.Digest, n)
	for i := range keys {
		keys[i] = actionKey(fmt.Sprint(i))
		r := &repb.ActionResult{
			OutputFiles:  []*repb.OutputFile{{Path: fmt.Sprintf("lego-out/pkg%d/out.json", i), Digest: DigestOf([]byte(fmt.Sprint(i)))}},
			StdoutDigest: DigestOf(nil),
			StderrDigest: DigestOf(nil),
		}
		if err := s.PutActionResult(bg, keys[i], r, Here); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

// BenchmarkGetActionResult is a null build's lookup: memory hits from
// several goroutines ("mem"), and first reads from disk ("disk").
func BenchmarkGetActionResult(b *testing.B) {
	s := newDisk(b)
	keys := benchActions(b, s, 10000)
	b.Run("mem", func(b *testing.B) {
		m := memOver(b, s)
		for _, k := range keys {
			m.GetActionResult(bg, k)
		}
		m.wait()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if r, _, err := m.GetActionResult(bg, keys[i%len(keys)]); r == nil || err != nil {
					b.Fatal("miss", err)
				}
				i++
			}
		})
	})
	b.Run("disk", func(b *testing.B) {
		b.ReportAllocs()
		d := openDisk(b, s.Dir())
		for i := 0; i < b.N; i++ {
			if r, _, err := d.GetActionResult(bg, keys[i%len(keys)]); r == nil || err != nil {
				b.Fatal("miss", err)
			}
		}
	})
}

// BenchmarkACLookup is a null build's first lookup of 10k results, each
// iteration in a new Disk: answered by the index ("index"), or by the
// entries' files with the index not in use ("files").
func BenchmarkACLookup(b *testing.B) {
	s := newDisk(b)
	keys := benchActions(b, s, 10000)
	run := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d := openDisk(b, s.Dir())
			for _, k := range keys {
				if r, _, err := d.GetActionResult(bg, k); r == nil || err != nil {
					b.Fatal("miss", err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/lookup")
	}
	b.Run("index", run)
	indexOff(b, s.Dir())
	b.Run("files", run)
}

func BenchmarkFileCacheDigestHit(b *testing.B) {
	p := filepath.Join(b.TempDir(), "src.py")
	writeOld(b, p, make([]byte, 1<<20), 0o644, time.Hour)
	c, _ := OpenFileCache(filepath.Join(b.TempDir(), "cache"))
	c.Digest(p)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.Digest(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	if c.Hashed() != 1 {
		b.Fatalf("Hashed = %d", c.Hashed())
	}
}

func BenchmarkFileCacheSave100k(b *testing.B) {
	c, _ := OpenFileCache(filepath.Join(b.TempDir(), "cache"))
	for i := 0; i < 100000; i++ {
		c.m[fmt.Sprintf("/home/user/workspace/pkg%d/src/file_%d.py", i%500, i)] = fcEntry{size: int64(i), mtime: 1, ctime: 2, ino: uint64(i), hash: DigestOf([]byte(fmt.Sprint(i))).Hash}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.ver++
		if err := c.Save(); err != nil {
			b.Fatal(err)
		}
		if _, err := OpenFileCache(c.path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHas(b *testing.B) {
	s := newDisk(b)
	d := mustPut(b, s, []byte("blob"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !s.Has(d) {
			b.Fatal("missing")
		}
	}
}

func BenchmarkGetSmallMem(b *testing.B) {
	s := newMemDisk(b)
	d := mustPut(b, s.disk, make([]byte, 4096))
	p, _ := s.BlobPath(d, false)
	backdate(b, p, time.Hour)
	s.Get(d)
	s.wait()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinkExisting re-materializes an output already in place.
func BenchmarkLinkExisting(b *testing.B) {
	s := newDisk(b)
	d := mustPut(b, s, []byte("output"))
	dst := filepath.Join(b.TempDir(), "out")
	if err := s.Link(d, false, dst); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Link(d, false, dst); err != nil {
			b.Fatal(err)
		}
	}
	os.Remove(dst)
}

// BenchmarkCheck is a null build's check of 10k hits' blobs: "first" in a
// new process (reading the record), "warm" once its shards are read.
func BenchmarkCheck(b *testing.B) {
	s := newDisk(b)
	ds := make([]*repb.Digest, 10000)
	for i := range ds {
		ds[i] = mustPut(b, s, []byte(fmt.Sprint("output ", i)))
	}
	b.Run("first", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d := openDisk(b, s.Dir())
			for _, dg := range ds {
				if err := d.Check(dg, false); err != nil {
					b.Fatal(err)
				}
			}
			if d.Rehashed() != 0 {
				b.Fatalf("%d hashed", d.Rehashed())
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ds)), "ns/blob")
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := s.Check(ds[i%len(ds)], false); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
