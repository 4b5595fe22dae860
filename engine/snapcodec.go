package engine

import (
	"encoding/binary"
	"math"

	"github.com/legobuild/lego/cas"
)

// snapEnc writes a snapshot: varints, and strings through a table so that
// the thousands of repeated ones (labels, mnemonics, environments, tool
// paths) are written once.
type snapEnc struct {
	b    []byte
	strs map[string]uint64
	maps map[string]uint64 // a shared value's encoding -> its index (graphEnc.shared)
}

func (e *snapEnc) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *snapEnc) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *snapEnc) bool(v bool) {
	if v {
		e.uint(1)
	} else {
		e.uint(0)
	}
}

// str writes a string seen before as its index + 1, a new one as 0, its
// length and bytes.
func (e *snapEnc) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.uint(i + 1)
		return
	}
	e.strs[s] = uint64(len(e.strs))
	e.uint(0)
	e.bytes([]byte(s))
}

// raw writes a string that is seldom repeated (a path, a digest) as is,
// without the cost of looking it up in the table.
func (e *snapEnc) raw(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *snapEnc) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.b = append(e.b, b...)
}

func (e *snapEnc) strings(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *snapEnc) strMap(m map[string]string) {
	e.uint(uint64(len(m)))
	for _, k := range sortedKeys(m, nil) {
		e.str(k)
		e.str(m[k])
	}
}

func (e *snapEnc) fp(f cas.Fingerprint) {
	e.int(f.Size)
	e.int(f.Mtime)
	e.int(f.Ctime)
	e.uint(f.Ino)
	e.uint(uint64(f.Mode))
}

func (e *snapEnc) float(f float64) { e.uint(math.Float64bits(f)) }

// snapDec reads what snapEnc wrote; the first error latches and every
// later read returns zero values. It reads a string, so that the strings
// it returns are slices of it, not copies: a snapshot of 100,000 actions
// holds a million of them.
type snapDec struct {
	s      string
	strs   []string
	labels map[string]Label
	bad    bool
}

func (d *snapDec) fail() {
	d.bad, d.s = true, ""
}

func (d *snapDec) uint() uint64 {
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.fail()
	return 0
}

func (d *snapDec) int() int64 {
	u := d.uint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *snapDec) bool() bool { return d.uint() == 1 }

// count reads a length, refusing one larger than the bytes left could
// hold (each element takes at least one byte), so damage cannot make a
// huge allocation.
func (d *snapDec) count() int {
	n := d.uint()
	if n > uint64(len(d.s)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *snapDec) raw() string {
	n := d.count()
	if d.bad {
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

func (d *snapDec) str() string {
	i := d.uint()
	if i > 0 {
		if i-1 >= uint64(len(d.strs)) {
			d.fail()
			return ""
		}
		return d.strs[i-1]
	}
	s := d.raw()
	if !d.bad {
		d.strs = append(d.strs, s)
	}
	return s
}

// label reads a label, parsing each distinct one once.
func (d *snapDec) label() Label {
	s := d.str()
	if l, ok := d.labels[s]; ok {
		return l
	}
	l, err := ParseLabel(s, "")
	if err != nil {
		d.fail()
	}
	if d.labels == nil {
		d.labels = map[string]Label{}
	}
	d.labels[s] = l
	return l
}

func (d *snapDec) fp() cas.Fingerprint {
	return cas.Fingerprint{Size: d.int(), Mtime: d.int(), Ctime: d.int(), Ino: d.uint(), Mode: uint32(d.uint())}
}

func (d *snapDec) float() float64 { return math.Float64frombits(d.uint()) }
