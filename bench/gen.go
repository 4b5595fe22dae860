package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PerPackage is how many targets one generated BUILD file declares.
const PerPackage = 100

// Generate writes a workspace of n genrules in packages of PerPackage:
// inside a package, targets form chains of 10 (each reads the previous);
// every 10th target fans in the heads of the 10 chains before it, and every
// package's first target reads the last fan-in target of the previous
// package, so the graph is one connected DAG.
func Generate(root string, n int) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "WORKSPACE"), []byte("workspace(name = \"bench\")\n"), 0o644); err != nil {
		return err
	}
	pkgs := (n + PerPackage - 1) / PerPackage
	for p := 0; p < pkgs; p++ {
		var b strings.Builder
		for i := 0; i < PerPackage && p*PerPackage+i < n; i++ {
			var srcs []string
			switch {
			case i == 0 && p > 0:
				srcs = append(srcs, fmt.Sprintf("//p%d:t%d", p-1, PerPackage-1))
				srcs = append(srcs, "input.txt")
			case i == 0:
				srcs = append(srcs, "input.txt")
			case i%10 == 9:
				for j := i - 9; j < i; j += 3 {
					srcs = append(srcs, fmt.Sprintf(":t%d", j))
				}
			default:
				srcs = append(srcs, fmt.Sprintf(":t%d", i-1))
			}
			q := make([]string, len(srcs))
			for k, s := range srcs {
				q[k] = fmt.Sprintf("%q", s)
			}
			fmt.Fprintf(&b, "genrule(name = \"t%d\", srcs = [%s], outs = [\"t%d.out\"], cmd = \"cat $(SRCS) | wc -c > $@\")\n",
				i, strings.Join(q, ", "), i)
		}
		dir := filepath.Join(root, fmt.Sprintf("p%d", p))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "BUILD"), []byte(b.String()), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte(fmt.Sprintf("package %d\n", p)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
