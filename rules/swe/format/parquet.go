package format

// Parquet, as Hugging Face publishes datasets (written by pyarrow): every
// row becomes the JSON object the rest of the package reads, so a Parquet
// file is one more way to spell a JSON Lines file. Records are assembled
// from the column values' repetition and definition levels (Dremel), one
// row group at a time, so memory follows the row group, not the file.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
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
