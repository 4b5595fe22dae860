package format

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// Writing Parquet: records as pyarrow lays a table out, for tests,
// examples and benchmarks (traj-generate --out x.parquet).

// WriteParquet writes JSON object records as a Parquet file at path, laid
// out as pyarrow lays out a table (three-level LISTs, optional fields,
// Snappy pages, dictionary-encoded strings, row groups of rowGroupRows
// rows, version 1 data pages). The schema is inferred from the records: an object is a group of
// its keys in the order first seen, an array a LIST of its elements' type
// merged over all of them, a string a STRING, an integer an INT64, another
// number (or an integer where other records have fractions) a DOUBLE, a
// boolean a BOOLEAN; a field only ever null or empty is an always-null
// STRING. A field whose types conflict across records is an error naming
// the record (1-based) and the field. Reading the file back, a key missing
// from a record is there, null.
func WriteParquet(path string, records [][]byte, rowGroupRows int) error {
	if rowGroupRows <= 0 {
		return fmt.Errorf("write %s: row groups of %d rows", path, rowGroupRows)
	}
	root := &pwType{kind: pwObject}
	for i, rec := range records {
		if err := inferRecord(root, rec); err != nil {
			return fmt.Errorf("write %s: record %d: %w", path, i+1, err)
		}
	}
	if len(root.names) == 0 {
		return fmt.Errorf("write %s: no fields in the records to make a Parquet schema of", path)
	}
	node, err := root.node("")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	schema := parquet.NewSchema("schema", node)
	var cols []string
	for _, name := range root.names {
		// Top-level fields are optional: null at level 0.
		root.index[name].assign(name, 0, 0, &cols)
	}
	for i, p := range schema.Columns() {
		if i >= len(cols) || cols[i] != fmt.Sprint(p) {
			return fmt.Errorf("write %s: parquet-go laid out the columns unlike the schema (column %d is %v)", path, i, p)
		}
	}

	// Written beside path and renamed into place, as Create does.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	// Version 1 data pages, as pyarrow writes by default.
	w := parquet.NewWriter(bw, schema, parquet.Compression(&parquet.Snappy), parquet.DataPageVersion(1),
		parquet.CreatedBy("lego", "", ""))
	s := &pwShredder{cols: make([][]parquet.Value, len(cols))}
	batch := make([]parquet.Row, 0, 64)
	flush := func() error {
		_, err := w.WriteRows(batch)
		batch = batch[:0]
		return err
	}
	for i, rec := range records {
		row, err := s.record(root, rec)
		if err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: record %d: %w", path, i+1, err)
		}
		batch = append(batch, row)
		if len(batch) == cap(batch) || (i+1)%rowGroupRows == 0 || i+1 == len(records) {
			if err := flush(); err != nil {
				tmp.Close()
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
		if (i+1)%rowGroupRows == 0 && i+1 < len(records) {
			if err := w.Flush(); err != nil {
				tmp.Close()
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
	}
	err = w.Close()
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

type pwKind uint8

const (
	pwNull pwKind = iota // only null or empty so far
	pwObject
	pwArray
	pwString
	pwInt
	pwFloat
	pwBool
)

func (k pwKind) String() string {
	return [...]string{"null", "an object", "an array", "a string", "an integer", "a number", "a boolean"}[k]
}

// pwType is the inferred type of a field, with the levels and leaf column
// shredding needs.
type pwType struct {
	kind  pwKind
	names []string // object: fields in the order first seen
	index map[string]*pwType
	elem  *pwType // array

	def, rep int // levels of the parent, where this optional field is null
	col      int // leaf: column index
}

// orderedGroup is a Parquet group whose fields keep the records' order
// (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

func (t *pwType) node(path string) (parquet.Node, error) {
	switch t.kind {
	case pwObject:
		if len(t.names) == 0 {
			return nil, fmt.Errorf("field %s: only empty objects, which Parquet cannot store", path)
		}
		g := parquet.Group{}
		for _, name := range t.names {
			n, err := t.index[name].node(joinField(path, name))
			if err != nil {
				return nil, err
			}
			g[name] = parquet.Optional(n)
		}
		fields := g.Fields()
		rank := make(map[string]int, len(t.names))
		for i, name := range t.names {
			rank[name] = i
		}
		slices.SortFunc(fields, func(a, b parquet.Field) int { return rank[a.Name()] - rank[b.Name()] })
		return orderedGroup{Group: g, fields: fields}, nil
	case pwArray:
		if t.elem == nil {
			// Only empty arrays: a LIST of always-null strings.
			t.elem = &pwType{}
		}
		n, err := t.elem.node(path + "[]")
		if err != nil {
			return nil, err
		}
		return parquet.List(parquet.Optional(n)), nil
	case pwInt:
		return parquet.Leaf(parquet.Int64Type), nil
	case pwFloat:
		return parquet.Leaf(parquet.DoubleType), nil
	case pwBool:
		return parquet.Leaf(parquet.BooleanType), nil
	default:
		return parquet.Encoded(parquet.String(), &parquet.RLEDictionary), nil
	}
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// assign sets the levels (def: where the field is null) and leaf columns, in the depth-first order of the
// Parquet schema, and lists the column paths as parquet-go prints them.
func (t *pwType) assign(path string, def, rep int, cols *[]string) {
	t.def, t.rep = def, rep
	switch t.kind {
	case pwObject:
		for _, name := range t.names {
			// Struct fields are optional: null where the struct is present.
			t.index[name].assign(joinPath(path, name), def+1, rep, cols)
		}
	case pwArray:
		// optional group (LIST) -> repeated group list -> optional element.
		t.elem.assign(joinPath(path, "list", "element"), def+2, rep+1, cols)
	default:
		t.col = len(*cols)
		*cols = append(*cols, "["+joinPath(path)+"]")
	}
}

func joinPath(path string, names ...string) string {
	for _, n := range names {
		if path != "" {
			path += " "
		}
		path += n
	}
	return path
}

// inferRecord merges the type of one JSON object into root.
func inferRecord(root *pwType, rec []byte) error {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return errors.New("an empty record, not a JSON object")
	}
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	if err := inferObject(dec, root, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("text after the JSON object")
	}
	return nil
}

func inferObject(dec *json.Decoder, t *pwType, path string) error {
	if t.index == nil {
		t.index = map[string]*pwType{}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string)
		ft := t.index[name]
		if ft == nil {
			ft = &pwType{}
			t.index[name] = ft
			t.names = append(t.names, name)
		}
		if err := inferValue(dec, ft, joinField(path, name)); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

func inferValue(dec *json.Decoder, t *pwType, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	kind := pwNull
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			kind = pwObject
		} else {
			kind = pwArray
		}
	case string:
		kind = pwString
	case bool:
		kind = pwBool
	case json.Number:
		kind = pwFloat
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			kind = pwInt
		}
	}
	switch {
	case kind == pwNull || kind == t.kind:
	case t.kind == pwNull:
		t.kind = kind
	case kind == pwInt && t.kind == pwFloat:
	case kind == pwFloat && t.kind == pwInt:
		t.kind = pwFloat
	default:
		return fmt.Errorf("field %s: %s here, %s in an earlier record", path, kind, t.kind)
	}
	switch kind {
	case pwObject:
		return inferObject(dec, t, path)
	case pwArray:
		for dec.More() {
			if t.elem == nil {
				t.elem = &pwType{}
			}
			if err := inferValue(dec, t.elem, path+"[]"); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

// pwShredder turns records into Parquet rows: each leaf's values with
// their repetition and definition levels.
type pwShredder struct {
	cols [][]parquet.Value
}

func (s *pwShredder) record(root *pwType, rec []byte) (parquet.Row, error) {
	for c := range s.cols {
		s.cols[c] = s.cols[c][:0]
	}
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if err := s.object(dec, root, "", 0); err != nil {
		return nil, err
	}
	var row parquet.Row
	for _, vs := range s.cols {
		row = append(row, vs...)
	}
	return row, nil
}

func (s *pwShredder) put(t *pwType, v parquet.Value, rep, def int) {
	s.cols[t.col] = append(s.cols[t.col], v.Level(rep, def, t.col))
}

// null gives every leaf under t a null at levels rep, def: t null, or an
// array of t's empty.
func (s *pwShredder) null(t *pwType, rep, def int) {
	switch t.kind {
	case pwObject:
		for _, name := range t.names {
			s.null(t.index[name], rep, def)
		}
	case pwArray:
		s.null(t.elem, rep, def)
	default:
		s.put(t, parquet.NullValue(), rep, def)
	}
}

// object shreds the fields of an object, its "{" read.
func (s *pwShredder) object(dec *json.Decoder, t *pwType, path string, rep int) error {
	seen := make([]bool, len(t.names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string)
		ft := t.index[name]
		i := slices.Index(t.names, name)
		if seen[i] {
			return fmt.Errorf("field %s: a duplicate key", joinField(path, name))
		}
		seen[i] = true
		if err := s.value(dec, ft, joinField(path, name), rep); err != nil {
			return err
		}
	}
	for i, name := range t.names {
		if !seen[i] {
			// A missing key is a null field.
			ft := t.index[name]
			s.null(ft, rep, ft.def)
		}
	}
	_, err := dec.Token()
	return err
}

// value shreds one optional field t: absent at t.def, present above it.
func (s *pwShredder) value(dec *json.Decoder, t *pwType, path string, rep int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		s.null(t, rep, t.def)
		return nil
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return s.object(dec, t, path, rep)
		}
		// Elements repeat at the list's level, are defined two levels below
		// the list's own (list present, then an entry), and are optional.
		n := 0
		for ; dec.More(); n++ {
			r := rep
			if n > 0 {
				r = t.elem.rep
			}
			if err := s.value(dec, t.elem, path+"[]", r); err != nil {
				return err
			}
		}
		if n == 0 {
			s.null(t.elem, rep, t.def+1)
		}
		_, err := dec.Token()
		return err
	case string:
		s.put(t, parquet.ByteArrayValue([]byte(v)), rep, t.def+1)
	case bool:
		s.put(t, parquet.BooleanValue(v), rep, t.def+1)
	case json.Number:
		if t.kind == pwInt {
			x, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("field %s: %w", path, err)
			}
			s.put(t, parquet.Int64Value(x), rep, t.def+1)
		} else {
			x, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return fmt.Errorf("field %s: %w", path, err)
			}
			s.put(t, parquet.DoubleValue(x), rep, t.def+1)
		}
	}
	return nil
}

// Columnar gives every field of trajectory records one type across them,
// as a Parquet column has one, the way published sets are laid out: a
// string content becomes a list of one text part, object arguments and
// tool schemas JSON strings, an empty object nothing (Parquet has no
// empty group). The records mean the same trajectories to lego. A record
// that is not JSON is kept as it is (WriteParquet reports it).
func Columnar(recs [][]byte) [][]byte {
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch s := e.(type) {
				case []any:
					if k == "tools" {
						// Schemas differ in their fields.
						b, _ := json.Marshal(s)
						x[k] = string(b)
						continue
					}
				case string:
					if k == "content" {
						x[k] = []any{map[string]any{"type": "text", "text": s}}
						continue
					}
				case map[string]any:
					if len(s) == 0 {
						delete(x, k)
						continue
					}
					if k == "arguments" {
						b, _ := json.Marshal(s)
						x[k] = string(b)
						continue
					}
				}
				x[k] = walk(e)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			out[i] = r
			continue
		}
		b, err := json.Marshal(walk(v))
		if err != nil {
			b = r
		}
		out[i] = b
	}
	return out
}
