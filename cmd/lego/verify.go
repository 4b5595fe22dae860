package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// exitCorrupt is lego verify's exit status when it evicted something.
const exitCorrupt = 3

func runVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	store, err := cas.Open(c.cacheDir)
	if err != nil {
		return err
	}
	unlock, err := store.LockExclusive()
	if err != nil {
		return err
	}
	defer unlock()
	return reportVerify(store, os.Stdout)
}

// reportVerify re-hashes the whole store (the caller holds its exclusive
// lock) and reports; it fails with exitCorrupt when it evicted anything.
func reportVerify(store *cas.Disk, w io.Writer) error {
	st, err := store.Verify()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "verify: hashed %d blobs and %d executable copies (%s), parsed %d action results",
		st.Blobs, st.ExecCopies, executors.FormatSize(st.Bytes), st.Actions)
	if st.Upgraded > 0 {
		fmt.Fprintf(w, ", %d rewritten with a checksum", st.Upgraded)
	}
	if len(st.Evicted) == 0 {
		fmt.Fprintln(w, ": all sound")
		return nil
	}
	actions := 0
	for _, e := range st.Evicted {
		if strings.HasPrefix(e.Path, "ac"+string(filepath.Separator)) {
			actions++
		}
	}
	fmt.Fprintf(w, "\nverify: evicted %d corrupt blob file(s) and %d damaged action result(s); the next build runs their actions again:\n",
		len(st.Evicted)-actions, actions)
	for _, e := range st.Evicted {
		fmt.Fprintf(w, "  %s: %s\n", e.Path, e.Reason)
	}
	return exitError{exitCorrupt}
}
