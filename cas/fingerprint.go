package cas

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Fingerprint is what one stat says of a file. A write to its bytes moves
// mtime and ctime (which only the kernel sets), a replacement has another
// inode and a chmod moves ctime, so a file whose fingerprint is unchanged
// is unchanged, unless it was written within a clock tick of the stat
// that took the fingerprint: Racy tells those apart.
type Fingerprint struct {
	Size, Mtime, Ctime int64
	Ino                uint64
	Mode               uint32
}

// FingerprintOf is st's fingerprint.
func FingerprintOf(st *unix.Stat_t) Fingerprint {
	return Fingerprint{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Mode: st.Mode}
}

// Stat fingerprints the file at path, following symlinks.
func Stat(path string) (Fingerprint, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Fingerprint{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return FingerprintOf(&st), nil
}

// Racy reports whether a file of this fingerprint, taken at time at, was
// changed so recently that a same-size rewrite in the same clock tick
// would leave the fingerprint as it is (git's "racily clean"): such a
// file is hashed again rather than trusted. The tick is the kernel's
// coarse clock, a few milliseconds, where timestamps have nanoseconds;
// a filesystem that keeps whole seconds gets racyWindow.
func (f Fingerprint) Racy(at time.Time) bool {
	window := fineRacyWindow
	if f.Mtime%1e9 == 0 && f.Ctime%1e9 == 0 {
		window = racyWindow
	}
	return max(f.Mtime, f.Ctime) >= at.UnixNano()-int64(window)
}

// fineRacyWindow bounds the kernel's timestamp tick (a jiffy, at most 10
// ms) with room to spare.
const fineRacyWindow = 100 * time.Millisecond

// Regular reports whether the file is a regular file.
func (f Fingerprint) Regular() bool { return f.Mode&unix.S_IFMT == unix.S_IFREG }

// Executable reports whether any execute bit is set.
func (f Fingerprint) Executable() bool { return f.Mode&0o111 != 0 }
