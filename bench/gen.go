package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PerPackage is how many targets one generated BUILD file declares.
const PerPackage = 100

// Shapes are the graphs -shape can generate.
var Shapes = []string{"chain", "tree", "wide", "packages"}

// node is one genrule of a generated workspace.
type node struct {
	pkg  int
	name string
	deps []int // indexes of the nodes it reads
	// srcs is the genrule's srcs as its BUILD file lists them: source
	// files of the package and the deps' labels.
	srcs []string
}

func (n *node) label() string { return fmt.Sprintf("//p%d:%s", n.pkg, n.name) }

// out is where lego writes the node's output, relative to the workspace.
func (n *node) out() string { return fmt.Sprintf("lego-out/p%d/%s.out", n.pkg, n.name) }

// reads says whether the genrule lists the workspace-relative source file.
func (n *node) reads(file string) bool {
	for _, s := range n.srcs {
		if !strings.HasPrefix(s, ":") && !strings.HasPrefix(s, "//") && fmt.Sprintf("p%d/%s", n.pkg, s) == file {
			return true
		}
	}
	return false
}

// Graph is a generated workspace: its genrules and its source files.
type Graph struct {
	shape string
	nodes []node
	files map[string]string // workspace-relative path: content
	// probe is the source file the touch and change measurements edit:
	// one deep in the graph, so a build system without change pruning
	// would rerun much of it.
	probe string
}

// NewGraph builds the graph of shape with n targets.
//
// In chain, tree and wide, target i is t<i> of package p<i/PerPackage> and
// reads its own source file s<i>.txt first. chain: i reads i-1 and i/2
// (the graph of a Bazel issue about incremental builds); tree: i reads its
// children 2i+1 and 2i+2, a binary tree under t0; wide: n independent
// targets. packages is the older generator, kept so that earlier numbers
// stay comparable.
func NewGraph(shape string, n int) (*Graph, error) {
	g := &Graph{shape: shape, nodes: make([]node, n), files: map[string]string{}}
	// Names first: a node may read one after it (the tree's children).
	for i := range g.nodes {
		g.nodes[i].pkg, g.nodes[i].name = i/PerPackage, fmt.Sprintf("t%d", i)
		if shape == "packages" {
			g.nodes[i].name = fmt.Sprintf("t%d", i%PerPackage)
		}
	}
	for i := range g.nodes {
		nd := &g.nodes[i]
		var files []string
		switch shape {
		case "chain":
			if i > 0 {
				nd.deps = append(nd.deps, i-1)
				if i/2 != i-1 {
					nd.deps = append(nd.deps, i/2)
				}
			}
		case "tree":
			for _, c := range []int{2*i + 1, 2*i + 2} {
				if c < n {
					nd.deps = append(nd.deps, c)
				}
			}
		case "wide":
		case "packages":
			files = g.packagesNode(i)
		default:
			return nil, fmt.Errorf("-shape: %q is none of %s", shape, strings.Join(Shapes, ", "))
		}
		if shape != "packages" {
			files = []string{fmt.Sprintf("s%d.txt", i)}
			g.files[fmt.Sprintf("p%d/%s", nd.pkg, files[0])] = fmt.Sprintf("source %d\n", i)
			nd.srcs = files
		}
		for _, d := range nd.deps {
			nd.srcs = append(nd.srcs, g.depLabel(nd, d))
		}
		if shape == "packages" {
			// The older generator listed input.txt after the dep.
			nd.srcs = append(nd.srcs, files...)
		}
	}
	// Halfway down the chain; a leaf of the tree.
	g.probe = fmt.Sprintf("p%d/s%d.txt", n/2/PerPackage, n/2)
	if shape == "packages" {
		g.probe = fmt.Sprintf("p%d/input.txt", n/2/PerPackage)
	}
	return g, nil
}

// packagesNode sets node k's deps in the older shape and returns its
// source files: inside a package, targets form chains of 10 (each reads
// the previous); every 10th target fans in the heads of the 10 chains
// before it, and every package's first target reads input.txt and the
// last fan-in target of the previous package, so the graph is one
// connected DAG.
func (g *Graph) packagesNode(k int) []string {
	p, i := k/PerPackage, k%PerPackage
	nd := &g.nodes[k]
	switch {
	case i == 0:
		if p > 0 {
			nd.deps = []int{k - 1}
		}
		g.files[fmt.Sprintf("p%d/input.txt", p)] = fmt.Sprintf("package %d\n", p)
		return []string{"input.txt"}
	case i%10 == 9:
		for j := i - 9; j < i; j += 3 {
			nd.deps = append(nd.deps, k-i+j)
		}
	default:
		nd.deps = []int{k - 1}
	}
	return nil
}

// Write writes the workspace under root: WORKSPACE, one BUILD per package
// and the source files. It builds with lego and with Bazel alike.
func (g *Graph) Write(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "WORKSPACE"), []byte("workspace(name = \"bench\")\n"), 0o644); err != nil {
		return err
	}
	builds := map[int]*strings.Builder{}
	for i := range g.nodes {
		nd := &g.nodes[i]
		q := make([]string, len(nd.srcs))
		for k, s := range nd.srcs {
			q[k] = fmt.Sprintf("%q", s)
		}
		b := builds[nd.pkg]
		if b == nil {
			// Bazel's targets are private to their package by default;
			// lego reads and ignores visibility.
			b = &strings.Builder{}
			b.WriteString("package(default_visibility = [\"//visibility:public\"])\n")
			builds[nd.pkg] = b
		}
		fmt.Fprintf(b, "genrule(name = %q, srcs = [%s], outs = [\"%s.out\"], cmd = \"cat $(SRCS) | wc -c > $@\")\n",
			nd.name, strings.Join(q, ", "), nd.name)
	}
	for p, b := range builds {
		dir := filepath.Join(root, fmt.Sprintf("p%d", p))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "BUILD"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	for path, content := range g.files {
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// depLabel is how nd's BUILD file names node d: relative in its package.
func (g *Graph) depLabel(nd *node, d int) string {
	if g.nodes[d].pkg == nd.pkg {
		return ":" + g.nodes[d].name
	}
	return g.nodes[d].label()
}

// Generate writes a workspace of shape with n targets under root.
func Generate(root, shape string, n int) error {
	g, err := NewGraph(shape, n)
	if err != nil {
		return err
	}
	return g.Write(root)
}
