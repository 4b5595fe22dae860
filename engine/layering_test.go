package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The engine sees the store through cas.Store and the executor through
// executors.Executor with its Capabilities: it imports no store or
// executor implementation and names no concrete store type, so layers
// stack and executors compose without it.
func TestEngineSeesOnlyInterfaces(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	concrete := map[string]bool{"Disk": true, "Memory": true}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/legobuild/lego/cas/") || strings.HasPrefix(path, "github.com/legobuild/lego/executors/") {
				t.Errorf("%s imports %s, an implementation", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "cas" && concrete[sel.Sel.Name] {
					t.Errorf("%s names cas.%s, a concrete store", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
