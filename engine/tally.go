package engine

import (
	"os"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// tallyTail is how much of a Tally action's stdout is read for its last
// line: all of a small one, the end of a larger one.
const tallyTail = 4 << 10

// tally emits and counts the word a Tally action's stdout ends with, for
// res, its result: run now or a cache hit, which has the same stdout. A
// stdout that cannot be read, or ends with no tally line, counts nothing.
func (b *builder) tally(n *node, res *repb.ActionResult) {
	if !n.a.Tally {
		return
	}
	b.count(n, executors.TallyOf(blobTail(b.o.Store, res.GetStdoutDigest(), tallyTail)))
}

// count counts and emits n's tally word (none when "").
func (b *builder) count(n *node, word string) {
	n.word = word
	if word == "" {
		return
	}
	label := n.a.Owner.String()
	b.mu.Lock()
	if b.sum.Tallies == nil {
		b.sum.Tallies = map[string]map[string]int{}
	}
	words := b.sum.Tallies[label]
	if words == nil {
		words = map[string]int{}
		b.sum.Tallies[label] = words
	}
	words[word]++
	b.mu.Unlock()
	b.o.Listener.Event(&Event{Type: EvTally, Time: time.Now(), Label: label, Message: word})
}

// blobTail returns up to the last n bytes of blob d, or "" when it cannot
// be read. A blob of at most n bytes is read whole, and so verified; of a
// larger one only the end is read from its file, unhashed: a judge may
// log much to stdout, and its word is shown, not built on.
func blobTail(s cas.Store, d *repb.Digest, n int64) string {
	if d.GetSizeBytes() == 0 {
		return ""
	}
	if d.SizeBytes <= n {
		b, err := s.Get(d)
		if err != nil {
			return ""
		}
		return string(b)
	}
	p, err := s.BlobPath(d, false)
	if err != nil {
		return ""
	}
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, n)
	// ReadAt may answer io.EOF with all n bytes read, the file's end.
	if k, _ := f.ReadAt(buf, d.SizeBytes-n); int64(k) != n {
		return ""
	}
	return string(buf)
}
