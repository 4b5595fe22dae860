package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// imageSharing reports, for the final images under dir (a workspace's
// lego-out: OCI layouts NAME.oci, not the .stepN stages between them),
// the sum of their sizes beside the bytes of their distinct blobs: what
// the store holds, since a blob is stored once by its digest.
func imageSharing(dir string) error {
	type blob struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}
	unique := map[string]int64{}
	held := map[string]int{} // digest -> how many images hold it
	var sum int64
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || !strings.HasSuffix(p, ".oci") {
			return err
		}
		if strings.Contains(filepath.Base(p), ".step") {
			return fs.SkipDir
		}
		var index struct{ Manifests []blob }
		if err := readJSON(filepath.Join(p, "index.json"), &index); err != nil || len(index.Manifests) == 0 {
			return fs.SkipDir // not a layout
		}
		m := index.Manifests[0]
		var man struct {
			Config blob
			Layers []blob
		}
		if err := readJSON(filepath.Join(p, "blobs", strings.Replace(m.Digest, ":", "/", 1)), &man); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		size := m.Size
		unique[m.Digest] = m.Size
		for _, b := range append(man.Layers, man.Config) {
			size += b.Size
			unique[b.Digest] = b.Size
			held[b.Digest]++
		}
		sum += size
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("  %-60s %8.1f MB, %d layers", rel, float64(size)/1e6, len(man.Layers)))
		return fs.SkipDir
	})
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		return fmt.Errorf("no OCI image layouts under %s: build the example first", dir)
	}
	sort.Strings(lines)
	// Above the base: without the blobs every image holds (the OS).
	var u, common int64
	for d, s := range unique {
		u += s
		if held[d] == len(lines) {
			common += s
		}
	}
	above, uAbove := sum-common*int64(len(lines)), u-common
	fmt.Println(strings.Join(lines, "\n"))
	fmt.Printf("%d images: %.1f MB summed, %.1f MB of distinct blobs in the store: sharing ratio %.1fx\n",
		len(lines), float64(sum)/1e6, float64(u)/1e6, float64(sum)/float64(u))
	if uAbove > 0 {
		fmt.Printf("above the %.1f MB every image shares: %.2f MB summed, %.2f MB distinct: %.1fx\n",
			float64(common)/1e6, float64(above)/1e6, float64(uAbove)/1e6, float64(above)/float64(uAbove))
	}
	return nil
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
