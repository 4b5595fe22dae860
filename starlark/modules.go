package starlark

import (
	"fmt"
	"path/filepath"
	"strings"

	sl "go.starlark.net/starlark"

	"github.com/legobuild/lego/engine"
)

// moduleEntry is one .star file in the module cache. Loads of the same
// module from parallel BUILD files share one execution.
type moduleEntry struct {
	label   string
	done    chan struct{}
	globals sl.StringDict
	err     error
	owner   *loadTask // the task executing it, nil when done
}

// loadTask is one goroutine's chain of nested loads; waitingFor lets a
// task that is about to block see whether the wait would close a cycle.
type loadTask struct {
	stack      []string
	waitingFor *moduleEntry
}

const (
	localTask = "lego.task"
	localPkg  = "lego.pkg"     // *pkgBuilder while a BUILD file runs
	localDir  = "lego.loadpkg" // package that relative load() labels resolve against
)

func (l *Loader) loadFunc(thread *sl.Thread, module string) (sl.StringDict, error) {
	task := thread.Local(localTask).(*loadTask)
	from := thread.Local(localDir).(string)
	lab, err := engine.ParseLabel(module, from)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(lab.Name, ".star") {
		return nil, fmt.Errorf("load(%q): only .star files can be loaded", module)
	}
	return l.module(task, lab)
}

func (l *Loader) module(task *loadTask, lab engine.Label) (sl.StringDict, error) {
	key := lab.String()
	l.mu.Lock()
	e, ok := l.modules[key]
	if !ok {
		e = &moduleEntry{label: key, done: make(chan struct{}), owner: task}
		l.modules[key] = e
		l.mu.Unlock()
		task.stack = append(task.stack, key)
		e.globals, e.err = l.execModule(task, lab)
		task.stack = task.stack[:len(task.stack)-1]
		l.mu.Lock()
		e.owner = nil
		l.mu.Unlock()
		close(e.done)
		return e.globals, e.err
	}
	select {
	case <-e.done:
		l.mu.Unlock()
		return e.globals, e.err
	default:
	}
	// In progress. Follow who waits for whom: reaching ourselves is a cycle.
	if e.owner == task {
		l.mu.Unlock()
		i := indexOf(task.stack, key)
		return nil, fmt.Errorf("load cycle: %s", strings.Join(append(append([]string{}, task.stack[i:]...), key), " -> "))
	}
	chain := []string{key}
	for x := e; x.owner != nil; {
		if x.owner == task {
			l.mu.Unlock()
			return nil, fmt.Errorf("load cycle: %s", strings.Join(append(chain, key), " -> "))
		}
		if x = x.owner.waitingFor; x == nil {
			break
		}
		chain = append(chain, x.label)
	}
	task.waitingFor = e
	l.mu.Unlock()
	<-e.done
	l.mu.Lock()
	task.waitingFor = nil
	l.mu.Unlock()
	return e.globals, e.err
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return 0
}

func (l *Loader) execModule(task *loadTask, lab engine.Label) (sl.StringDict, error) {
	rel := filepath.ToSlash(filepath.Join(lab.Pkg, lab.Name))
	src, err := l.reads.ReadFile(filepath.Join(l.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", lab, err)
	}
	thread := l.newThread(task, rel, lab.Pkg)
	globals, err := sl.ExecFileOptions(fileOptions, thread, rel, src, l.predeclared())
	if err != nil {
		return nil, evalError(err)
	}
	// Rules and providers take the name they are exported under.
	for name, v := range globals {
		switch v := v.(type) {
		case *ruleClass:
			if v.kind == "" {
				v.kind = name
			}
		case *provider:
			if v.name == "" {
				v.name = name
			}
		}
	}
	return globals, nil
}

func (l *Loader) newThread(task *loadTask, name, pkg string) *sl.Thread {
	thread := &sl.Thread{Name: name, Load: l.loadFunc}
	limitSteps(thread)
	thread.SetLocal(localTask, task)
	thread.SetLocal(localDir, pkg)
	thread.SetLocal(localRoot, l.root)
	thread.SetLocal(localReads, l.reads)
	return thread
}
