package cas

import (
	"testing"
	"time"
)

func TestLocks(t *testing.T) {
	a := newDisk(t)
	b := openDisk(t, a.Dir())
	u1, err := a.LockShared()
	if err != nil {
		t.Fatal(err)
	}
	u2, err := b.LockShared()
	if err != nil {
		t.Fatal("two shared locks must coexist:", err)
	}
	got := make(chan struct{})
	go func() {
		u, err := b.LockExclusive()
		if err != nil {
			t.Error(err)
		}
		close(got)
		u()
	}()
	u1()
	select {
	case <-got:
		t.Fatal("exclusive lock taken while a shared one is held")
	case <-time.After(50 * time.Millisecond):
	}
	u2()
	u2() // unlock is idempotent
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("exclusive lock not granted after shared ones were released")
	}
}
