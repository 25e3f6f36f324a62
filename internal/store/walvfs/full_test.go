//go:build linux

package walvfs

import (
	"bytes"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// fullDisk makes the VFS's log writes fail as on a full disk: from the
// from-th write on (counted from 1), count writes fail with ENOSPC (count
// < 0: all of them until heal). partial: a failing write first writes half
// its bytes, as the kernel does when the space runs out inside it.
type fullDisk struct {
	mu      sync.Mutex
	calls   int
	from    int
	count   int
	partial bool
	failed  int
	short   bool // a partial write happened: the next write fails
}

func (d *fullDisk) pwrite(fd int, p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.calls++
	fail := d.calls >= d.from && (d.count < 0 || d.failed < d.count)
	if fail {
		d.failed++
	}
	short := d.short
	d.short = fail && d.partial && len(p) > 1
	d.mu.Unlock()
	if short {
		return 0, syscall.ENOSPC
	}
	if !fail {
		return syscall.Pwrite(fd, p, off)
	}
	if d.partial && len(p) > 1 {
		return syscall.Pwrite(fd, p[:len(p)/2], off) // the rest fails
	}
	return 0, syscall.ENOSPC
}

// install puts d in place of the real pwrite until heal (or the test's end).
func (d *fullDisk) install(t *testing.T) (heal func()) {
	var once sync.Once
	heal = func() { once.Do(func() { pwrite = syscall.Pwrite }) }
	pwrite = d.pwrite
	t.Cleanup(heal)
	return heal
}

// TestFullDisk: a log write that fails (ENOSPC, whole or after a partial
// write) fails the transaction it belongs to with SQLITE_FULL, never
// panics, never publishes a commit whose frames are missing, and the same
// connection writes again once the disk has room: every committed row and
// no other is there, for readers and after a crash, and the database is
// intact.
func TestFullDisk(t *testing.T) {
	cases := []struct {
		name    string
		pragmas string
		rows    int // per transaction
		size    int // bytes per row
		from    int // first failing write, counted from the fault's start
		count   int // failing writes (-1: all until healed)
		partial bool
	}{
		{"commit write fails once", "", 3, 500, 1, 1, false},
		{"commit write fails until healed", "", 3, 500, 1, -1, false},
		{"partial commit write", "", 3, 500, 1, 1, true},
		{"second commit fails", "", 3, 500, 2, 1, false},
		{"log restart header fails", "", 3, 500, 1, 3, false},
		{"cache spill fails mid-transaction", "&_pragma=cache_size(5)", 200, 900, 2, 1, false},
		{"cache spill fails until healed", "&_pragma=cache_size(5)", 200, 900, 1, -1, true},
		{"larger than the buffer", "", 1500, 4000, 1, 1, false},
		{"larger than the buffer, later write", "", 1500, 4000, 2, -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.db")
			w, r := open(t, path, tc.pragmas)
			want := map[int]bool{}
			v := bytes.Repeat([]byte("v"), tc.size)
			// commit runs transaction i and reports whether it committed;
			// a failure must be SQLite's "disk full".
			commit := func(i int) bool {
				t.Helper()
				tx, err := w.Begin()
				if err != nil {
					t.Fatalf("begin %d: %v", i, err)
				}
				for j := range tc.rows {
					if _, err := tx.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i*10000+j, v); err != nil {
						_ = tx.Rollback()
						checkFull(t, err)
						return false
					}
				}
				if err := tx.Commit(); err != nil {
					checkFull(t, err)
					return false
				}
				for j := range tc.rows {
					want[i*10000+j] = true
				}
				return true
			}
			commit(0)
			d := &fullDisk{from: tc.from, count: tc.count, partial: tc.partial}
			heal := d.install(t)
			failures := 0
			for i := 1; i <= 4; i++ {
				if !commit(i) {
					failures++
				}
			}
			if failures == 0 {
				t.Fatalf("no transaction failed (%d writes, %d failed)", d.calls, d.failed)
			}
			heal()
			// Writes resume on the same connection, no reopening.
			if !commit(5) {
				t.Fatal("the commit after the disk had room again failed")
			}
			for name, db := range map[string]func() map[int]bool{
				"writer": func() map[int]bool { return keys(t, w) },
				"reader": func() map[int]bool { return keys(t, r) },
			} {
				got := db()
				if len(got) != len(want) {
					t.Fatalf("%s sees %d rows, want the %d committed", name, len(got), len(want))
				}
				for k := range want {
					if !got[k] {
						t.Fatalf("%s lacks committed row %d", name, k)
					}
				}
			}
			rows, check := crashCopy(t, path)
			if rows != len(want) || check != "ok" {
				t.Fatalf("a crash copy holds %d rows (want %d), integrity %s", rows, len(want), check)
			}
		})
	}
}

// keys is the set of keys in t as db sees it.
func keys(t *testing.T, db *sql.DB) map[int]bool {
	t.Helper()
	rows, err := db.Query(`SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]bool{}
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// checkFull fails the test unless err is SQLite's "database or disk is full".
func checkFull(t *testing.T, err error) {
	t.Helper()
	var coded interface{ Code() int }
	if !errors.As(err, &coded) || coded.Code()&0xff != 13 { // SQLITE_FULL
		t.Fatalf("want SQLITE_FULL, got %v", err)
	}
}
