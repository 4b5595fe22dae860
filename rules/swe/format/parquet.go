package format

// Parquet, as Hugging Face publishes datasets (written by pyarrow): every
// row becomes the JSON object the rest of the package reads, so a Parquet
// file is one more way to spell a JSON Lines file. Records are assembled
// from the column values' repetition and definition levels (Dremel), one
// row group at a time, so memory follows the row group, not the file.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	pqformat "github.com/parquet-go/parquet-go/format"
)

// parquetMagic is how a Parquet file starts (and ends).
const parquetMagic = "PAR1"

// ParquetRows streams the rows of the Parquet file f (size bytes) as JSON
// objects, in order: fn gets the 0-based row number and the row as a JSON
// object (a fresh slice it may keep). The object has the file's top-level
// columns as keys, in schema order; a null value is null, a LIST (or a
// legacy bare repeated field) an array, a group an object, a MAP an object
// with its keys as strings, strings and other byte arrays JSON strings
// (invalid UTF-8 is an error), numbers and booleans JSON numbers and
// booleans (NaN and infinities, which JSON lacks, null), timestamps RFC 3339
// strings in UTC, dates "2006-01-02", times "15:04:05.999999999", decimals
// JSON numbers and UUIDs their canonical string. Errors name the row and
// the column's path in the Parquet schema.
func ParquetRows(f *os.File, size int64, fn func(row int, rec []byte) error) error {
	name := f.Name()
	pf, err := openParquet(f, size)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	root, ncols, err := compileParquetSchema(pf.Metadata().Schema)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	a := &pqAssembler{cols: make([][]parquet.Value, ncols), pos: make([]int, ncols)}
	buf := make([]parquet.Row, 128)
	row := 0
	for g, rg := range pf.RowGroups() {
		if rg.NumRows() == 0 {
			continue
		}
		if got := len(rg.ColumnChunks()); got != ncols {
			return fmt.Errorf("%s: row group %d has %d columns, its schema %d", name, g, got, ncols)
		}
		rows := rg.Rows()
		for {
			n, rerr := readParquetRows(rows, buf)
			for _, r := range buf[:n] {
				rec, err := a.record(root, r)
				if err != nil {
					rows.Close()
					return fmt.Errorf("%s: row %d: %w", name, row, err)
				}
				if err := fn(row, rec); err != nil {
					rows.Close()
					return err
				}
				row++
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				rows.Close()
				return fmt.Errorf("%s: row %d (row group %d): %w", name, row, g, rerr)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("%s: row group %d: %w", name, g, err)
		}
	}
	return nil
}

// openParquet reads the footer. parquet-go panics on some malformed
// metadata (a DECIMAL without a length, say); a damaged file is an error.
func openParquet(f *os.File, size int64) (pf *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			pf, err = nil, fmt.Errorf("corrupt Parquet metadata: %v", p)
		}
	}()
	var head [4]byte
	if _, err := f.ReadAt(head[:], 0); err != nil || string(head[:]) != parquetMagic {
		return nil, errors.New("not a Parquet file (it does not start with \"PAR1\")")
	}
	pf, err = parquet.OpenFile(f, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(256<<10))
	if err != nil {
		return nil, fmt.Errorf("not a Parquet file, or a truncated one: %w", err)
	}
	return pf, nil
}

// readParquetRows is ReadRows with parquet-go's panics on corrupt pages
// made errors.
func readParquetRows(rows parquet.Rows, buf []parquet.Row) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("corrupt Parquet data: %v", p)
		}
	}()
	return rows.ReadRows(buf)
}

type pqKind uint8

const (
	pqLeaf pqKind = iota
	pqStruct
	pqList
	pqMap
)

// pqConv is how a leaf's values are written as JSON.
type pqConv uint8

const (
	cvPhysical pqConv = iota // no annotation: the physical type says
	cvNull
	cvBool
	cvInt
	cvUint
	cvFloat
	cvString
	cvTimestamp
	cvInt96Time
	cvDate
	cvTime
	cvDecimal
	cvUUID
	cvFloat16
)

// pqNode is one value of the JSON a row becomes: a leaf column, an object,
// an array or a map, with the levels that say where it is absent.
type pqNode struct {
	kind     pqKind
	name     string // key in the parent object
	path     string // dotted path in the Parquet schema, for errors
	nullable bool
	def      int // definition level at which the value is not null
	elemDef  int // list, map: definition level at which it has an entry
	rep      int // list, map: repetition level of its entries
	children []*pqNode
	leaf     int // first leaf column under the node
	nleaves  int

	conv  pqConv
	phys  pqformat.Type
	unit  int64 // cvTimestamp, cvTime: nanoseconds per unit
	scale int   // cvDecimal
}

type pqElem struct {
	se       *pqformat.SchemaElement
	children []*pqElem
}

// compileParquetSchema turns the footer's flattened schema into the tree
// the assembler walks; it returns the root and the number of leaf columns.
func compileParquetSchema(schema []pqformat.SchemaElement) (*pqNode, int, error) {
	if len(schema) == 0 {
		return nil, 0, errors.New("the Parquet schema is empty")
	}
	next := 0
	var tree func(path string) (*pqElem, error)
	tree = func(path string) (*pqElem, error) {
		if next >= len(schema) {
			return nil, fmt.Errorf("Parquet schema ends inside %s", path)
		}
		e := &pqElem{se: &schema[next]}
		next++
		for range e.se.NumChildren.V {
			c, err := tree(path + "." + e.se.Name)
			if err != nil {
				return nil, err
			}
			e.children = append(e.children, c)
		}
		return e, nil
	}
	top, err := tree("")
	if err != nil {
		return nil, 0, err
	}
	if next != len(schema) {
		return nil, 0, fmt.Errorf("Parquet schema has %d elements after its root's fields", len(schema)-next)
	}
	c := &pqCompiler{}
	root := &pqNode{kind: pqStruct}
	for _, e := range top.children {
		n, err := c.field(e, "", 0, 0)
		if err != nil {
			return nil, 0, err
		}
		root.children = append(root.children, n)
	}
	root.nleaves = c.leaves
	if c.leaves == 0 {
		return nil, 0, errors.New("the Parquet schema has no columns")
	}
	return root, c.leaves, nil
}

type pqCompiler struct{ leaves int }

func pqRepetition(se *pqformat.SchemaElement) pqformat.FieldRepetitionType {
	if !se.RepetitionType.Valid {
		return pqformat.Required
	}
	return se.RepetitionType.V
}

// field compiles a schema field whose parent is defined at def and repeats
// at rep.
func (c *pqCompiler) field(e *pqElem, parent string, def, rep int) (*pqNode, error) {
	path := e.se.Name
	if parent != "" {
		path = parent + "." + path
	}
	switch pqRepetition(e.se) {
	case pqformat.Repeated:
		// A bare repeated field (the legacy two-level list): an array, empty
		// rather than null when there are no entries.
		elem, err := c.value(e, path, def+1, rep+1)
		if err != nil {
			return nil, err
		}
		return c.span(&pqNode{kind: pqList, name: e.se.Name, path: path, def: def, elemDef: def + 1, rep: rep + 1,
			children: []*pqNode{elem}}), nil
	case pqformat.Optional:
		n, err := c.value(e, path, def+1, rep)
		if err != nil {
			return nil, err
		}
		n.nullable = true
		return n, nil
	default:
		return c.value(e, path, def, rep)
	}
}

// value compiles e ignoring its repetition, as a value present at
// definition level def.
func (c *pqCompiler) value(e *pqElem, path string, def, rep int) (*pqNode, error) {
	se := e.se
	n := &pqNode{name: se.Name, path: path, def: def}
	if se.NumChildren.V == 0 && se.Type.Valid {
		n.kind, n.leaf, n.nleaves = pqLeaf, c.leaves, 1
		c.leaves++
		return n, leafConv(n, se)
	}
	if len(e.children) == 0 {
		return nil, fmt.Errorf("Parquet column %s: a group with no fields", path)
	}
	lt := se.LogicalType.Value
	_, isList := lt.(*pqformat.ListType)
	_, isMap := lt.(*pqformat.MapType)
	isList = isList || lt == nil && se.ConvertedType.Valid && se.ConvertedType.V == deprecated.List
	isMap = isMap || lt == nil && se.ConvertedType.Valid &&
		(se.ConvertedType.V == deprecated.Map || se.ConvertedType.V == deprecated.MapKeyValue)
	if (isList || isMap) && (len(e.children) != 1 || pqRepetition(e.children[0].se) != pqformat.Repeated) {
		// MAP_KEY_VALUE was also put on the repeated group itself; that
		// group is seen through its MAP parent, so here it is a plain group.
		if !(isMap && se.ConvertedType.V == deprecated.MapKeyValue) {
			return nil, fmt.Errorf("Parquet column %s: a LIST or MAP needs one repeated field, it has %d fields",
				path, len(e.children))
		}
		isMap = false
	}
	switch {
	case isList:
		r := e.children[0]
		rpath := path + "." + r.se.Name
		var elem *pqNode
		var err error
		// The backward-compatibility rules of the Parquet LIST spec: which
		// level is the element.
		switch {
		case len(r.children) == 0:
			elem, err = c.value(r, rpath, def+1, rep+1)
		case len(r.children) > 1 || r.se.Name == "array" || r.se.Name == se.Name+"_tuple":
			elem, err = c.value(r, rpath, def+1, rep+1)
		default:
			elem, err = c.field(r.children[0], rpath, def+1, rep+1)
		}
		if err != nil {
			return nil, err
		}
		n.kind, n.elemDef, n.rep, n.children = pqList, def+1, rep+1, []*pqNode{elem}
	case isMap:
		kv := e.children[0]
		kvpath := path + "." + kv.se.Name
		if len(kv.children) < 1 || len(kv.children) > 2 {
			return nil, fmt.Errorf("Parquet column %s: a MAP's entries need a key and a value, they have %d fields",
				kvpath, len(kv.children))
		}
		n.kind, n.elemDef, n.rep = pqMap, def+1, rep+1
		for _, f := range kv.children {
			ch, err := c.field(f, kvpath, def+1, rep+1)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, ch)
		}
		if n.children[0].kind != pqLeaf {
			return nil, fmt.Errorf("Parquet column %s: a MAP key must be a primitive column", n.children[0].path)
		}
	default:
		n.kind = pqStruct
		for _, f := range e.children {
			ch, err := c.field(f, path, def, rep)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, ch)
		}
	}
	return c.span(n), nil
}

// span sets the leaf range of a node from its children's.
func (c *pqCompiler) span(n *pqNode) *pqNode {
	n.leaf = n.children[0].leaf
	last := n.children[len(n.children)-1]
	n.nleaves = last.leaf + last.nleaves - n.leaf
	return n
}

func timeUnitNanos(u pqformat.TimeUnit) int64 {
	switch u.Value.(type) {
	case *pqformat.MilliSeconds:
		return 1e6
	case *pqformat.MicroSeconds:
		return 1e3
	default:
		return 1
	}
}

// leafConv decides how a leaf column is written from its physical type and
// its logical type (or the converted type older writers set instead).
func leafConv(n *pqNode, se *pqformat.SchemaElement) error {
	n.phys = se.Type.V
	unsupported := func(what string) error {
		return fmt.Errorf("Parquet column %s: %s is not supported", n.path, what)
	}
	switch lt := se.LogicalType.Value.(type) {
	case *pqformat.StringType, *pqformat.EnumType, *pqformat.JsonType, *pqformat.BsonType:
		n.conv = cvString
	case *pqformat.NullType:
		n.conv = cvNull
	case *pqformat.TimestampType:
		n.conv, n.unit = cvTimestamp, timeUnitNanos(lt.Unit)
	case *pqformat.TimeType:
		n.conv, n.unit = cvTime, timeUnitNanos(lt.Unit)
	case *pqformat.DateType:
		n.conv = cvDate
	case *pqformat.DecimalType:
		n.conv, n.scale = cvDecimal, int(lt.Scale)
	case *pqformat.IntType:
		n.conv = cvInt
		if !lt.IsSigned {
			n.conv = cvUint
		}
	case *pqformat.UUIDType:
		n.conv = cvUUID
	case *pqformat.Float16Type:
		n.conv = cvFloat16
	case nil:
		if !se.ConvertedType.Valid {
			break
		}
		switch ct := se.ConvertedType.V; ct {
		case deprecated.UTF8, deprecated.Enum, deprecated.Json, deprecated.Bson:
			n.conv = cvString
		case deprecated.Date:
			n.conv = cvDate
		case deprecated.TimeMillis:
			n.conv, n.unit = cvTime, 1e6
		case deprecated.TimeMicros:
			n.conv, n.unit = cvTime, 1e3
		case deprecated.TimestampMillis:
			n.conv, n.unit = cvTimestamp, 1e6
		case deprecated.TimestampMicros:
			n.conv, n.unit = cvTimestamp, 1e3
		case deprecated.Decimal:
			n.conv, n.scale = cvDecimal, int(se.Scale.V)
		case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32, deprecated.Uint64:
			n.conv = cvUint
		case deprecated.Int8, deprecated.Int16, deprecated.Int32, deprecated.Int64:
			n.conv = cvInt
		default:
			return unsupported(fmt.Sprintf("converted type %d", ct))
		}
	default:
		return unsupported("logical type " + lt.String())
	}
	if n.conv == cvPhysical {
		switch n.phys {
		case pqformat.Boolean:
			n.conv = cvBool
		case pqformat.Int32, pqformat.Int64:
			n.conv = cvInt
		case pqformat.Int96:
			n.conv = cvInt96Time
		case pqformat.Float, pqformat.Double:
			n.conv = cvFloat
		case pqformat.ByteArray, pqformat.FixedLenByteArray:
			n.conv = cvString
		default:
			return unsupported("physical type " + n.phys.String())
		}
	}
	ok := true
	switch n.conv {
	case cvInt, cvUint, cvTimestamp, cvTime:
		ok = n.phys == pqformat.Int32 || n.phys == pqformat.Int64
	case cvDate:
		ok = n.phys == pqformat.Int32
	case cvString, cvDecimal:
		ok = n.phys == pqformat.ByteArray || n.phys == pqformat.FixedLenByteArray ||
			n.conv == cvDecimal && (n.phys == pqformat.Int32 || n.phys == pqformat.Int64)
	case cvUUID:
		ok = n.phys == pqformat.FixedLenByteArray && se.TypeLength.V == 16
	case cvFloat16:
		ok = n.phys == pqformat.FixedLenByteArray && se.TypeLength.V == 2
	}
	if !ok {
		return fmt.Errorf("Parquet column %s: physical type %s does not fit its annotation", n.path, n.phys)
	}
	return nil
}

// pqAssembler builds one row's JSON from its column values.
type pqAssembler struct {
	cols [][]parquet.Value // this row's values, by leaf column
	pos  []int             // the next value of each column
	out  []byte
}

func (a *pqAssembler) record(root *pqNode, row parquet.Row) ([]byte, error) {
	for c := range a.cols {
		a.cols[c], a.pos[c] = a.cols[c][:0], 0
	}
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(a.cols) {
			return nil, fmt.Errorf("a value of column %d, the schema has %d", c, len(a.cols))
		}
		a.cols[c] = append(a.cols[c], v)
	}
	a.out = a.out[:0]
	if err := a.emit(root); err != nil {
		return nil, err
	}
	for c := range a.cols {
		if a.pos[c] != len(a.cols[c]) {
			return nil, fmt.Errorf("leaf column %d has %d values the levels do not place (corrupt levels)",
				c, len(a.cols[c])-a.pos[c])
		}
	}
	return bytes.Clone(a.out), nil
}

func (a *pqAssembler) peek(c int) (parquet.Value, bool) {
	if a.pos[c] >= len(a.cols[c]) {
		return parquet.Value{}, false
	}
	return a.cols[c][a.pos[c]], true
}

// skip consumes the one value each leaf under n has where n is null or
// empty.
func (a *pqAssembler) skip(n *pqNode) error {
	for c := n.leaf; c < n.leaf+n.nleaves; c++ {
		if a.pos[c] >= len(a.cols[c]) {
			return fmt.Errorf("column %s: too few values (corrupt levels)", n.path)
		}
		a.pos[c]++
	}
	return nil
}

func (a *pqAssembler) emit(n *pqNode) error {
	v, ok := a.peek(n.leaf)
	if !ok {
		return fmt.Errorf("column %s: too few values (corrupt levels)", n.path)
	}
	d := v.DefinitionLevel()
	if n.nullable && d < n.def {
		a.out = append(a.out, "null"...)
		return a.skip(n)
	}
	switch n.kind {
	case pqStruct:
		a.out = append(a.out, '{')
		for i, ch := range n.children {
			if i > 0 {
				a.out = append(a.out, ',')
			}
			a.out = appendString(a.out, ch.name)
			a.out = append(a.out, ':')
			if err := a.emit(ch); err != nil {
				return err
			}
		}
		a.out = append(a.out, '}')
	case pqList, pqMap:
		open, closing := byte('['), byte(']')
		if n.kind == pqMap {
			open, closing = '{', '}'
		}
		a.out = append(a.out, open)
		if d < n.elemDef {
			a.out = append(a.out, closing)
			return a.skip(n)
		}
		for first := true; ; first = false {
			if !first {
				a.out = append(a.out, ',')
			}
			if n.kind == pqList {
				if err := a.emit(n.children[0]); err != nil {
					return err
				}
			} else if err := a.entry(n); err != nil {
				return err
			}
			v, ok := a.peek(n.leaf)
			if !ok || v.RepetitionLevel() != n.rep {
				break
			}
		}
		a.out = append(a.out, closing)
	default:
		if err := a.leaf(n, v); err != nil {
			return fmt.Errorf("column %s: %w", n.path, err)
		}
		a.pos[n.leaf]++
	}
	return nil
}

// entry writes one key: value of a map; JSON keys are strings, so other
// keys are quoted.
func (a *pqAssembler) entry(n *pqNode) error {
	key := n.children[0]
	start := len(a.out)
	if err := a.emit(key); err != nil {
		return err
	}
	switch k := a.out[start:]; {
	case string(k) == "null":
		return fmt.Errorf("column %s: a null map key", key.path)
	case k[0] != '"':
		a.out = append(a.out[:start], appendString(nil, string(k))...)
	}
	a.out = append(a.out, ':')
	if len(n.children) < 2 {
		a.out = append(a.out, "null"...)
		return nil
	}
	return a.emit(n.children[1])
}

func (a *pqAssembler) leaf(n *pqNode, v parquet.Value) error {
	if v.IsNull() || n.conv == cvNull {
		a.out = append(a.out, "null"...)
		return nil
	}
	integer := func() int64 {
		if n.phys == pqformat.Int32 {
			return int64(v.Int32())
		}
		return v.Int64()
	}
	b := a.out
	switch n.conv {
	case cvBool:
		b = strconv.AppendBool(b, v.Boolean())
	case cvInt:
		b = strconv.AppendInt(b, integer(), 10)
	case cvUint:
		if n.phys == pqformat.Int32 {
			b = strconv.AppendUint(b, uint64(v.Uint32()), 10)
		} else {
			b = strconv.AppendUint(b, v.Uint64(), 10)
		}
	case cvFloat:
		if n.phys == pqformat.Float {
			b = appendJSONFloat(b, float64(v.Float()), 32)
		} else {
			b = appendJSONFloat(b, v.Double(), 64)
		}
	case cvFloat16:
		b = appendJSONFloat(b, float64(float16(v.ByteArray())), 32)
	case cvString:
		s := v.ByteArray()
		if !utf8.Valid(s) {
			return errors.New("invalid UTF-8 in a string")
		}
		b = appendString(b, string(s))
	case cvTimestamp:
		perSec := 1e9 / n.unit
		x := integer()
		t := time.Unix(x/perSec, x%perSec*n.unit).UTC()
		b = append(t.AppendFormat(append(b, '"'), time.RFC3339Nano), '"')
	case cvInt96Time:
		// Impala's timestamps: nanoseconds of the day, then the Julian day.
		i := v.Int96()
		nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
		t := time.Unix((int64(i[2])-2440588)*86400, nanos).UTC()
		b = append(t.AppendFormat(append(b, '"'), time.RFC3339Nano), '"')
	case cvDate:
		t := time.Unix(int64(v.Int32())*86400, 0).UTC()
		b = append(t.AppendFormat(append(b, '"'), "2006-01-02"), '"')
	case cvTime:
		t := time.Unix(0, integer()*n.unit).UTC()
		b = append(t.AppendFormat(append(b, '"'), "15:04:05.999999999"), '"')
	case cvDecimal:
		var x big.Int
		switch n.phys {
		case pqformat.Int32, pqformat.Int64:
			x.SetInt64(integer())
		default:
			// Big-endian two's complement.
			raw := v.ByteArray()
			x.SetBytes(raw)
			if len(raw) > 0 && raw[0]&0x80 != 0 {
				x.Sub(&x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
			}
		}
		b = appendDecimal(b, &x, n.scale)
	case cvUUID:
		u := v.ByteArray()
		var s [36]byte
		hex.Encode(s[0:8], u[0:4])
		s[8] = '-'
		hex.Encode(s[9:13], u[4:6])
		s[13] = '-'
		hex.Encode(s[14:18], u[6:8])
		s[18] = '-'
		hex.Encode(s[19:23], u[8:10])
		s[23] = '-'
		hex.Encode(s[24:], u[10:])
		b = append(append(append(b, '"'), s[:]...), '"')
	}
	a.out = b
	return nil
}

// appendDecimal writes unscaled * 10^-scale as a JSON number.
func appendDecimal(b []byte, x *big.Int, scale int) []byte {
	if x.Sign() < 0 {
		b = append(b, '-')
		x = new(big.Int).Neg(x)
	}
	digits := x.String()
	if scale <= 0 {
		b = append(b, digits...)
		for range -scale {
			if digits != "0" {
				b = append(b, '0')
			}
		}
		return b
	}
	if len(digits) <= scale {
		digits = string(bytes.Repeat([]byte{'0'}, scale-len(digits)+1)) + digits
	}
	return append(append(append(b, digits[:len(digits)-scale]...), '.'), digits[len(digits)-scale:]...)
}

// float16 decodes an IEEE 754 half-precision number, little-endian.
func float16(b []byte) float32 {
	h := uint32(b[0]) | uint32(b[1])<<8
	sign, exp, frac := h>>15, (h>>10)&0x1f, h&0x3ff
	var f float32
	switch exp {
	case 0:
		f = float32(frac) / (1 << 24)
	case 0x1f:
		f = float32(math.Inf(1))
		if frac != 0 {
			f = float32(math.NaN())
		}
	default:
		f = float32(math.Ldexp(float64(frac|0x400), int(exp)-25))
	}
	if sign != 0 {
		f = -f
	}
	return f
}

// appendJSONFloat formats f as encoding/json does; NaN and infinities,
// which JSON cannot spell, are null.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs, format := math.Abs(f), byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
		bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

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
