package cas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MarkerFile names a directory as a lego store. Open writes it into a new
// store and refuses a non-empty directory without it; Expunge deletes
// nothing where it is missing. A mistyped --cache_dir (".", a workspace,
// $HOME) must never be taken for a store and wiped.
const MarkerFile = "LEGO_CACHE"

// markerFormat is the store layout's version, the marker's "format N"
// line: a lego refuses a store of a format it does not know.
const markerFormat = 1

var markerText = fmt.Sprintf("lego's content-addressed store and action cache; `lego clean --expunge` deletes what lego put here.\nformat %d\n", markerFormat)

// layout is what a store holds (true: a directory). Expunge deletes these
// and nothing else; a directory holding only these and cas/ and ac/ is a
// store made before the marker existed.
var layout = map[string]bool{
	"cas": true, "cas-x": true, "ac": true, "tmp": true, "usage": true, "filecache": true, recDir: true, acxDir: true,
	"lock": false, "gcgen": false,
}

// claim makes sure dir is a store of this format, creating dir and its
// marker where it is new (or made by an older lego).
func claim(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ok, err := marked(dir)
	if ok || err != nil {
		return err
	}
	if _, err := storeLayout(dir); err != nil {
		// A process making dir a store writes the marker first: if dir
		// changed meanwhile, the marker is there now.
		if ok, merr := marked(dir); ok || merr != nil {
			return merr
		}
		var fe *notStoreError
		if errors.As(err, &fe) {
			return fmt.Errorf("%w: use an empty or new directory for the cache", err)
		}
		return err
	}
	return writeMarker(dir)
}

// marked reports whether dir holds a marker, checking its format.
func marked(dir string) (bool, error) {
	p := filepath.Join(dir, MarkerFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, checkMarker(p, b)
}

func checkMarker(path string, b []byte) error {
	for i, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "format ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			return fmt.Errorf("%s:%d: bad format line %q", path, i+1, line)
		case n != markerFormat:
			return fmt.Errorf("%s:%d: the store has format %d; this lego reads format %d only", path, i+1, n, markerFormat)
		}
		return nil
	}
	return fmt.Errorf("%s: no \"format N\" line: not a lego store's marker", path)
}

// storeLayout reports whether dir may become a store: it is empty, or
// holds what an older lego made (cas/, ac/ and the like), or only the lock
// file that Expunge leaves. Otherwise it fails, naming what in dir a store
// would not hold.
func storeLayout(dir string) (empty bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	var foreign []string
	dirs := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if name == MarkerFile || markerTemp(name) {
			continue // another process is making dir a store
		}
		isDir, ok := layout[name]
		if ok {
			// Stat follows a symlink (cas/ on another disk, say).
			st, err := os.Stat(filepath.Join(dir, name))
			ok = err == nil && st.IsDir() == isDir
		}
		switch {
		case !ok:
			foreign = append(foreign, name)
		case isDir:
			dirs[name] = true
		}
	}
	if len(foreign) > 0 {
		return false, foreignError(dir, foreign)
	}
	// A directory holding only tmp/, say, is someone's, not a store.
	if len(dirs) > 0 && !(dirs["cas"] && dirs["ac"]) {
		return false, foreignError(dir, nil)
	}
	return len(ents) == 0, nil
}

// markerTemp reports whether name is a marker being written.
func markerTemp(name string) bool { return strings.HasPrefix(name, MarkerFile+".tmp-") }

// foreignError says why dir is not taken for a store, naming some of what
// it holds that a store would not.
func foreignError(dir string, names []string) error {
	sort.Strings(names)
	msg := fmt.Sprintf("%s is not a lego cache: it has no %s file", dir, MarkerFile)
	if len(names) > 0 {
		msg += " and holds " + strings.Join(names[:min(3, len(names))], ", ")
		if len(names) > 3 {
			msg += fmt.Sprintf(" and %d more", len(names)-3)
		}
	}
	return &notStoreError{msg}
}

// notStoreError is Open's and Expunge's error for a directory that is not
// a store.
type notStoreError struct{ msg string }

func (e *notStoreError) Error() string { return e.msg }

// writeMarker links a complete marker into place, so that a concurrent
// Open never reads half of one; a marker written meanwhile by another
// process stands. The temp file is beside it, not in tmp/: until the
// marker exists, dir must hold nothing that could make it look foreign.
func writeMarker(dir string) error {
	f, err := os.CreateTemp(dir, MarkerFile+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(markerText)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	p := filepath.Join(dir, MarkerFile)
	if err := os.Link(f.Name(), p); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		_, err = marked(dir)
		return err
	}
	return nil
}

// Expunge deletes the store at dir, under its exclusive lock (no build may
// be reading it): the entries of its layout, then the marker. A directory
// without a marker is refused, unless it is empty or missing (nothing to
// delete) or an older lego's store; whatever else dir holds stays.
func Expunge(dir string) error {
	if dir == "" {
		return errors.New("expunge: no cache directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	ok, err := marked(abs)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		empty, err := storeLayout(abs)
		if err != nil {
			return fmt.Errorf("refusing to delete anything: %w", err)
		}
		if empty {
			return nil
		}
	}
	s, err := Open(abs)
	if err != nil {
		return err
	}
	unlock, err := s.LockExclusive()
	if err != nil {
		return err
	}
	defer unlock()
	ents, err := os.ReadDir(abs)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if _, ok := layout[name]; !ok && !markerTemp(name) {
			continue
		}
		if name == "lock" {
			continue // held by us; removing it would let another process lock a new file
		}
		if err := RemoveAll(filepath.Join(abs, name)); err != nil {
			return err
		}
	}
	return os.Remove(filepath.Join(abs, MarkerFile))
}
