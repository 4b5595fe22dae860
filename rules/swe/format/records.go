package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Records are read from the files users bring as published: JSON Lines, a
// JSON array (Hugging Face's JSON export, json.dump of a list), one or
// more JSON documents (SWE-agent's pretty-printed .traj), any of these
// gzip- or zstd-compressed, and Parquet. The layout is found from the
// content, not the name. Each record is handed on as the bytes of one JSON
// object, with where it is in its file.

// Layouts of a record file.
const (
	LayoutJSONL   = "jsonl"   // one record per line
	LayoutArray   = "array"   // a JSON array of records
	LayoutJSON    = "json"    // JSON documents one after the other (a .traj)
	LayoutParquet = "parquet" // one record per row
)

// Loc is where a record is: a line (1-based) of a JSONL file or a JSON
// document's first line, an index (0-based, as jq counts) of an array, a
// row (0-based) of a Parquet file.
type Loc struct {
	File string
	Unit string // "" (line), "index" or "row"
	N    int
}

func (l Loc) String() string {
	if l.Unit == "" {
		return fmt.Sprintf("%s:%d", l.File, l.N)
	}
	return fmt.Sprintf("%s: %s %d", l.File, l.Unit, l.N)
}

// Err is a *LineError at l.
func (l Loc) Err(field, format string, args ...any) *LineError {
	return &LineError{File: l.File, Line: l.N, Unit: l.Unit, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// recordIter hands out the records of a file in order; pos is the offset
// past the last record handed out in a mapped file (for releasing pages).
type recordIter struct {
	next func() (rec []byte, n int, ok bool)
	err  func() error
	pos  func() int
}

// openRecords opens path and finds its layout.
func openRecords(path string) (io.Closer, string, recordIter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", recordIter{}, err
	}
	var magic [4]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 4 && string(magic[:]) == parquetMagic {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, "", recordIter{}, err
		}
		c, it := parquetIter(f, st.Size())
		return c, LayoutParquet, it, nil
	}
	f.Close()
	r, err := Open(path)
	if err != nil {
		return nil, "", recordIter{}, err
	}
	if m, ok := r.(*mapped); ok {
		layout, it := splitIn(m.data, nil, m)
		return r, layout, it, nil
	}
	// A stream (decompressed): read up to its first non-blank line, which
	// decides the layout as for a mapped file.
	br := bufio.NewReaderSize(r, 1<<20)
	var head []byte
	for {
		chunk, err := br.ReadSlice('\n')
		head = append(head, chunk...)
		if err == bufio.ErrBufferFull && len(head) < maxLine {
			continue
		}
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			r.Close()
			return nil, "", recordIter{}, fmt.Errorf("%s: %w", path, err)
		}
		if err != nil || len(bytes.TrimSpace(head)) > 0 {
			break
		}
	}
	layout, it := splitIn(head, br, nil)
	return r, layout, it, nil
}

// splitIn picks the layout from the first non-blank line of data and
// returns the iterator over data followed by rest (nil: data is all).
func splitIn(data []byte, rest io.Reader, m *mapped) (string, recordIter) {
	i := skipSpace(data, 0)
	if i < len(data) && data[i] == '[' {
		s := &splitter{buf: data, rest: rest, array: true, m: m}
		return LayoutArray, recordIter{s.next, s.error, s.offset}
	}
	// JSON Lines when the first line holds a whole value, else documents.
	line := data[i:]
	if k := bytes.IndexByte(line, '\n'); k >= 0 {
		line = line[:k]
	}
	if end, err := skipValue(line, 0); i == len(data) || err == nil && skipSpace(line, end) == len(line) {
		var src io.Reader = m
		if m == nil {
			src = io.MultiReader(bytes.NewReader(data), rest)
		}
		next, e, pos := lines(src)
		return LayoutJSONL, numbered(next, e, pos)
	}
	s := &splitter{buf: data, rest: rest, m: m}
	return LayoutJSON, recordIter{s.next, s.error, s.offset}
}

// numbered numbers lines from 1, skipping blank ones.
func numbered(next func() ([]byte, bool), err func() error, pos func() int) recordIter {
	n := 0
	return recordIter{func() ([]byte, int, bool) {
		for {
			b, ok := next()
			if !ok {
				return nil, 0, false
			}
			n++
			if len(bytes.TrimSpace(b)) > 0 {
				return b, n, true
			}
		}
	}, err, pos}
}

// splitter cuts JSON values out of a buffer, refilled from rest when one
// runs past its end: the elements of a top-level array, or documents one
// after the other. A mapped file is all in buf and its values are handed
// out in place; a stream's values are copies.
type splitter struct {
	buf   []byte
	off   int // next byte to look at in buf
	base  int // file offset of buf[0] (streams)
	rest  io.Reader
	eof   bool
	array bool
	state int // array: 0 before '[', 1 after '[', 2 after a value, 3 after ',', 4 after ']'
	n     int // next index (array)
	line  int // documents: the line buf[lineOff] is on
	lnOff int
	err   error
	m     *mapped
}

func (s *splitter) error() error { return s.err }
func (s *splitter) offset() int  { return s.off }

// lineOf is the line of buf[off] (off never goes back).
func (s *splitter) lineOf(off int) int {
	s.line += bytes.Count(s.buf[s.lnOff:off], []byte{'\n'})
	s.lnOff = off
	return s.line + 1
}

// more reads more of rest into buf, keeping buf[s.off:]; false when
// nothing more comes.
func (s *splitter) more() bool {
	if s.rest == nil || s.eof || s.err != nil {
		return false
	}
	if s.off > 0 {
		s.lineOf(s.off)
		s.buf = append(s.buf[:0:0], s.buf[s.off:]...)
		s.base += s.off
		s.lnOff -= s.off
		s.off = 0
	}
	if cap(s.buf)-len(s.buf) < 1<<20 {
		s.buf = append(make([]byte, 0, 2*cap(s.buf)+1<<20), s.buf...)
	}
	for {
		n, err := s.rest.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			s.err = err
			return false
		}
		if n > 0 || s.eof {
			return n > 0
		}
	}
}

func (s *splitter) next() ([]byte, int, bool) {
	if s.err != nil {
		return nil, 0, false
	}
	if s.array {
		return s.nextElement()
	}
	for {
		s.off = skipSpace(s.buf, s.off)
		if s.off < len(s.buf) {
			break
		}
		if !s.more() {
			return nil, 0, false
		}
	}
	line := s.lineOf(s.off)
	v, ok := s.value(fmt.Sprintf("line %d", line))
	if !ok {
		return nil, 0, false
	}
	return v, line, true
}

func (s *splitter) nextElement() ([]byte, int, bool) {
	for {
		s.off = skipSpace(s.buf, s.off)
		if s.off >= len(s.buf) {
			if s.more() {
				continue
			}
			if s.state != 4 {
				s.err = fmt.Errorf("the array ends without its closing ']' (after index %d)", s.n-1)
			}
			return nil, 0, false
		}
		c := s.buf[s.off]
		switch {
		case s.state == 0: // '[', as splitIn found
			s.off++
			s.state = 1
			continue
		case s.state == 4:
			s.err = fmt.Errorf("data after the array's closing ']' at byte %d", s.base+s.off)
			return nil, 0, false
		case c == ']' && s.state != 3:
			s.off++
			s.state = 4
			continue
		case s.state == 2 && c == ',':
			s.off++
			s.state = 3
			continue
		case s.state == 2:
			s.err = fmt.Errorf("after index %d: want ',' or ']' at byte %d", s.n-1, s.base+s.off)
			return nil, 0, false
		case c == ']':
			s.err = fmt.Errorf("after index %d: ',' before the array's closing ']'", s.n-1)
			return nil, 0, false
		}
		v, ok := s.value(fmt.Sprintf("index %d", s.n))
		if !ok {
			return nil, 0, false
		}
		s.state = 2
		s.n++
		return v, s.n - 1, true
	}
}

// value cuts the value at s.off.
func (s *splitter) value(where string) ([]byte, bool) {
	for {
		end, err := skipValue(s.buf, s.off)
		// A value that reaches the end of buf may go on in rest.
		if (err == nil && end == len(s.buf) || errors.Is(err, errTruncated)) && s.more() {
			continue
		}
		if err != nil {
			s.err = fmt.Errorf("%s: not JSON: %v", where, err)
			return nil, false
		}
		v := s.buf[s.off:end]
		if s.rest != nil {
			v = append([]byte(nil), v...)
		}
		s.off = end
		return v, true
	}
}

// MapRecords is Map over the records of the file at path, whatever its
// layout: fn gets each record with its location.
func MapRecords[T any](path string, fn func(at Loc, b []byte) (T, error), sink func(T) error) (string, error) {
	c, layout, it, err := openRecords(path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	unit := unitOf(layout)
	m, _ := c.(*mapped)
	err = mapIter(it, m, func(n int, b []byte) (T, error) {
		return fn(Loc{File: path, Unit: unit, N: n}, b)
	}, sink)
	if err != nil {
		var le *LineError
		if !errors.As(err, &le) {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	return layout, err
}

// parquetIter streams the rows of a Parquet file from a goroutine;
// closing it stops that goroutine and closes f.
type parquetRecs struct {
	f    *os.File
	rows chan parquetRow
	stop chan struct{}
	done chan struct{}
	err  error
}

type parquetRow struct {
	n int
	b []byte
}

func parquetIter(f *os.File, size int64) (io.Closer, recordIter) {
	p := &parquetRecs{f: f, rows: make(chan parquetRow, 256), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.rows)
		p.err = ParquetRows(f, size, func(row int, rec []byte) error {
			select {
			case p.rows <- parquetRow{row, rec}:
				return nil
			case <-p.stop:
				return errStopped
			}
		})
	}()
	return p, recordIter{
		next: func() ([]byte, int, bool) {
			r, ok := <-p.rows
			return r.b, r.n, ok
		},
		err: func() error {
			<-p.done
			if errors.Is(p.err, errStopped) {
				return nil
			}
			return p.err
		},
		pos: func() int { return 0 },
	}
}

var errStopped = errors.New("stopped")

func (p *parquetRecs) Close() error {
	close(p.stop)
	<-p.done
	return p.f.Close()
}

// EachRecord calls fn with the records of the file at path in order, on
// this goroutine (for small inputs read at analysis, such as task
// instances), and returns its layout.
func EachRecord(path string, fn func(at Loc, b []byte) error) (string, error) {
	c, layout, it, err := openRecords(path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	unit := unitOf(layout)
	for {
		b, n, ok := it.next()
		if !ok {
			break
		}
		if err := fn(Loc{File: path, Unit: unit, N: n}, b); err != nil {
			return layout, err
		}
	}
	if err := it.err(); err != nil {
		return layout, fmt.Errorf("%s: %w", path, err)
	}
	return layout, nil
}

func unitOf(layout string) string {
	switch layout {
	case LayoutArray:
		return "index"
	case LayoutParquet:
		return "row"
	}
	return ""
}

// DecodeAt is DecodeLine for a record at any location.
func DecodeAt(at Loc, b []byte, v any) error {
	err := DecodeLine(at.File, at.N, b, v)
	if le, ok := err.(*LineError); ok {
		le.Unit = at.Unit
	}
	return err
}
