package format

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/klauspost/compress/zstd"
)

// LineError is a bad line of a JSONL file.
type LineError struct {
	File  string
	Line  int    // the line; the index or row when Unit says so
	Unit  string // "" (a line), "index" (of a JSON array) or "row" (of a Parquet file)
	Field string // "" when the line is not JSON at all
	Msg   string
}

func (e *LineError) Error() string {
	at := Loc{e.File, e.Unit, e.Line}.String()
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", at, e.Msg)
	}
	return fmt.Sprintf("%s: field %s: %s", at, e.Field, e.Msg)
}

// DecodeLine unmarshals one JSONL line into v, naming the field a type
// error is in.
func DecodeLine(file string, line int, b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	le := &LineError{File: file, Line: line, Msg: err.Error()}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		le.Field = te.Field
		le.Msg = fmt.Sprintf("got JSON %s, want %s", te.Value, te.Type)
	case errors.As(err, &se):
		le.Msg = fmt.Sprintf("not JSON: %v (at byte %d)", se, se.Offset)
	default:
		// A field's own UnmarshalJSON: json names the Go field in its error.
		if f := fieldOf(err.Error()); f != "" {
			le.Field = f
		}
	}
	return le
}

// fieldOf digs the JSON field out of a json error message such as
// "json: cannot unmarshal ... into Go struct field Task.FAIL_TO_PASS of type ...".
func fieldOf(msg string) string {
	const k = "Go struct field "
	i := strings.Index(msg, k)
	if i < 0 {
		return ""
	}
	f := msg[i+len(k):]
	if j := strings.IndexByte(f, ' '); j >= 0 {
		f = f[:j]
	}
	if j := strings.IndexByte(f, '.'); j >= 0 {
		f = f[j+1:]
	}
	return f
}

// Open opens a JSONL file, decompressing gzip or zstd by magic bytes.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	if m := mapFile(f); m != nil {
		return m, nil
	}
	return readCloser{br, f.Close}, nil
}

// mapped is a plain file mapped into memory: Map hands out its lines in
// place, with no read copy and no heap for them, which matters when the
// lines are a gigabyte of trajectories.
type mapped struct {
	*bytes.Reader
	data []byte
	f    *os.File
	done int // pages before this offset are released
}

// release unmaps the pages wholly before end from the process (they stay
// in the page cache): lines already sunk are not looked at again, and a
// mapped gigabyte should not count as the process's memory.
func (m *mapped) release(end int) {
	end &^= os.Getpagesize() - 1
	if end-m.done >= releaseStep || end == len(m.data)&^(os.Getpagesize()-1) && end > m.done {
		syscall.Madvise(m.data[m.done:end], syscall.MADV_DONTNEED)
		m.done = end
	}
}

// releaseStep batches releases: each one costs a TLB flush on every core.
const releaseStep = 64 << 20

func (m *mapped) Close() error {
	err := syscall.Munmap(m.data)
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mapFile maps f, or returns nil where it cannot (empty, not a regular
// file, mmap refused): the caller reads it instead.
func mapFile(f *os.File) *mapped {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 || int64(int(st.Size())) != st.Size() {
		return nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	syscall.Madvise(data, syscall.MADV_SEQUENTIAL)
	return &mapped{Reader: bytes.NewReader(data), data: data, f: f}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// Writer writes a JSONL file, compressed by suffix (.gz, .zst). Nothing
// is at path until Commit: a failed step leaves no partial output.
type Writer struct {
	path string
	tmp  *os.File
	buf  *pwriter
	z    io.WriteCloser
	w    io.Writer
}

// Create starts a JSONL file at path.
func Create(path string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, tmp: tmp, buf: newPWriter(tmp)}
	w.w = w.buf
	switch {
	case strings.HasSuffix(path, ".gz"):
		w.z = gzip.NewWriter(w.buf)
		w.w = w.z
	case strings.HasSuffix(path, ".zst"):
		zw, err := zstd.NewWriter(w.buf)
		if err != nil {
			w.Abort()
			return nil, err
		}
		w.z, w.w = zw, zw
	}
	return w, nil
}

// Line returns an empty buffer of at least n bytes for a line to write,
// to be given back with FreeLine once written: a step builds a line the
// size of each record, and making (and zeroing) a new one each time cost
// as much as building it.
func Line(n int) []byte {
	if b, ok := linePool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, n)
}

// FreeLine gives back a buffer from Line; b must not be used after.
func FreeLine(b []byte) { linePool.Put(&b) }

var linePool sync.Pool

// Write writes raw bytes (whole lines).
func (w *Writer) Write(b []byte) (int, error) { return w.w.Write(b) }

// WriteJSONLine writes v as one JSONL line.
func (w *Writer) WriteJSONLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.w.Write(append(b, '\n'))
	return err
}

// Commit flushes and moves the file into place.
func (w *Writer) Commit() error {
	var err error
	if w.z != nil {
		err = w.z.Close()
	}
	if ferr := w.buf.Flush(); err == nil {
		err = ferr
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.path)
	}
	if err != nil {
		os.Remove(w.tmp.Name())
	}
	return err
}

// Abort drops what was written.
func (w *Writer) Abort() {
	w.buf.Flush()
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}

// pwriter buffers writes into chunks and writes the chunks at their
// offsets from several goroutines. The kernel's copy into the page cache
// is most of the cost of writing a gigabyte, and one thread does it at
// about 600 MB/s on the machines we measured: in parallel the data
// plane's writes keep up with its parsing.
type pwriter struct {
	f     *os.File
	cur   []byte
	off   int64
	jobs  chan pchunk
	free  chan []byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
	flush bool
	made  int // chunks handed to the writers beyond the first
}

type pchunk struct {
	off int64
	b   []byte
}

const pchunkSize = 4 << 20

func newPWriter(f *os.File) *pwriter {
	n := runtime.GOMAXPROCS(0)
	// Chunks are made as they fill (a small file never makes one whole)
	// and come back through free.
	p := &pwriter{f: f, jobs: make(chan pchunk, n), free: make(chan []byte, 2*n)}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for c := range p.jobs {
				if _, err := p.f.WriteAt(c.b, c.off); err != nil {
					p.mu.Lock()
					if p.err == nil {
						p.err = err
					}
					p.mu.Unlock()
				}
				p.free <- c.b[:0]
			}
		}()
	}
	return p
}

func (p *pwriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n := len(b)
	for len(b) > 0 {
		room := pchunkSize - len(p.cur)
		if room > len(b) {
			room = len(b)
		}
		p.cur = append(p.cur, b[:room]...)
		b = b[room:]
		if len(p.cur) >= pchunkSize {
			p.dispatch()
		}
	}
	return n, nil
}

func (p *pwriter) dispatch() {
	if len(p.cur) == 0 {
		return
	}
	p.jobs <- pchunk{p.off, p.cur}
	p.off += int64(len(p.cur))
	p.cur = nil
	if p.made < cap(p.free) {
		p.made++
		return
	}
	p.cur = <-p.free
}

// Flush writes what is buffered and waits for the writers; it may be
// called once.
func (p *pwriter) Flush() error {
	if p.flush {
		return p.err
	}
	p.flush = true
	p.dispatch()
	close(p.jobs)
	p.wg.Wait()
	return p.err
}

// ReadJSON decodes the JSON file (not JSONL) at path into v; errors name
// the file.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// WriteJSON writes v as a JSON file (not JSONL), atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	w, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// maxLine bounds one JSONL record (a trajectory is about 60 KB; some
// agents' observations are large).
const maxLine = 256 << 20

// mapIter streams the records it hands out through fn on all cores and
// hands the results to sink in input order. The first error stops it.
// Memory stays bounded: records travel in batches, a few per worker. A
// record in a mapped file (m) is not copied, and the pages behind the
// sink are released.
func mapIter[T any](it recordIter, m *mapped, fn func(n int, b []byte) (T, error), sink func(T) error) error {
	type batch struct {
		ns   []int
		recs [][]byte
		end  int // for a mapped file: the offset past the last record
		out  []T
		err  error
		done chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *batch, workers*2)
	order := make(chan *batch, workers*2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				b.out = make([]T, 0, len(b.recs))
				for i, l := range b.recs {
					v, err := fn(b.ns[i], l)
					if err != nil {
						b.err = err
						break
					}
					b.out = append(b.out, v)
				}
				b.recs = nil
				close(b.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		defer close(order)
		defer close(jobs)
		const batchBytes = 4 << 20
		cur := &batch{done: make(chan struct{})}
		size := 0
		send := func() bool {
			select {
			case order <- cur:
			case <-stop:
				return false
			}
			jobs <- cur
			return true
		}
		for {
			rec, n, ok := it.next()
			if !ok {
				break
			}
			cur.ns = append(cur.ns, n)
			cur.recs = append(cur.recs, rec)
			cur.end = it.pos()
			size += len(rec)
			if size >= batchBytes {
				if !send() {
					readErr <- nil
					return
				}
				cur = &batch{done: make(chan struct{})}
				size = 0
			}
		}
		if len(cur.recs) > 0 && !send() {
			readErr <- nil
			return
		}
		readErr <- it.err()
	}()
	var err error
	for b := range order {
		<-b.done
		if err != nil {
			continue
		}
		if b.err != nil {
			err = b.err
			close(stop)
			continue
		}
		for _, v := range b.out {
			if err = sink(v); err != nil {
				close(stop)
				break
			}
		}
		if m != nil {
			m.release(b.end)
		}
	}
	wg.Wait()
	if rerr := <-readErr; err == nil && rerr != nil {
		err = rerr
	}
	return err
}

// lines iterates over the lines of r: in place for a mapped file, else
// copied out of a scanner (a scanner reuses its buffer).
// pos is the offset past the last line returned, for a mapped file.
func lines(r io.Reader) (next func() ([]byte, bool), err func() error, pos func() int) {
	if m, ok := r.(*mapped); ok {
		off := 0
		return func() ([]byte, bool) {
				rest := m.data[off:]
				if len(rest) == 0 {
					return nil, false
				}
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					i = len(rest)
				}
				off += min(i+1, len(rest))
				return bytes.TrimSuffix(rest[:i], []byte{'\r'}), true
			}, func() error { return nil }, func() int {
				return off
			}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), maxLine)
	return func() ([]byte, bool) {
		if !sc.Scan() {
			return nil, false
		}
		return append([]byte(nil), sc.Bytes()...), true
	}, sc.Err, func() int { return 0 }
}

// DataPath is the data file of an input: the input itself, or name inside
// it when it is a directory (the output directory of an earlier step).
func DataPath(in, name string) string {
	if st, err := os.Stat(in); err == nil && st.IsDir() {
		return filepath.Join(in, name)
	}
	return in
}
