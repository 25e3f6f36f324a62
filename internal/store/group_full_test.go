package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestGroupFailsWholeOnDiskFull: once a member of a group commit fails
// for a full disk, the members after it are not run and the group is
// rolled back: no member's writes are committed (SQLite may already have
// rolled the transaction back, and later members would commit alone), and
// every member hears ErrDiskFull or its own error.
func TestGroupFailsWholeOnDiskFull(t *testing.T) {
	ctx := context.Background()
	s, _ := openSQLiteForTest(t)
	s.stopGroupCommit() // drive a group by hand on the idle writer
	put := func(name string) func(tx *Tx) error {
		return func(tx *Tx) error { return tx.PutServerSecret(ctx, name, []byte("v")) }
	}
	ran := false
	members := []*txRequest{
		{ctx: ctx, fn: put("before"), done: make(chan error, 1)},
		{ctx: ctx, fn: func(*Tx) error { return fmt.Errorf("write: %w", ErrDiskFull) }, done: make(chan error, 1)},
		{ctx: ctx, fn: func(tx *Tx) error { ran = true; return put("after")(tx) }, done: make(chan error, 1)},
	}
	grp := s.beginGroup()
	for _, r := range members {
		grp.run(r)
	}
	if grp.commit() {
		t.Fatal("a group with a member that found the disk full was committed")
	}
	for i, r := range members {
		if err := <-r.done; !errors.Is(err, ErrDiskFull) {
			t.Errorf("member %d: %v, want ErrDiskFull", i, err)
		}
	}
	if ran {
		t.Error("a member after the full disk ran")
	}
	for _, name := range []string{"before", "after"} {
		if _, err := s.GetServerSecret(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want not committed", name, err)
		}
	}
	// The writer's connection is free again (the group's transaction is
	// over): a new group commits.
	if n := s.write.Stats().InUse; n != 0 {
		t.Fatalf("the writer's connection is still held (%d in use): the group was not rolled back", n)
	}
	grp = s.beginGroup()
	grp.run(&txRequest{ctx: ctx, fn: put("later"), done: make(chan error, 1)})
	if grp.err != nil {
		t.Fatal(grp.err)
	}
	if err := grp.tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
