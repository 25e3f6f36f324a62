//go:build linux

package walvfs

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// open returns a writer through the VFS and a reader through SQLite's
// default one, as the store opens them.
func open(t *testing.T, path string, writerPragmas string) (w, r *sql.DB) {
	t.Helper()
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	w, err := sql.Open("sqlite", "file:"+path+"?vfs="+Name+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(0)"+writerPragmas)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	t.Cleanup(func() { w.Close() })
	if _, err := w.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	r, err = sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return w, r
}

// crashCopy copies the database and its log as a crash of this process
// would leave them (what the kernel holds, nothing of SQLite's memory) and
// returns the rows and the integrity check of the copy.
func crashCopy(t *testing.T, path string) (rows int, check string) {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "copy.db"+suffix), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil {
		t.Fatal(err)
	}
	return rows, check
}

// writeCalls is this process's write system calls so far.
func writeCalls(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}

// TestCommitVisibleOnlyOnceInFile checks the one promise the VFS must keep:
// by the time another connection can see a commit, its frames are in the
// log file, so a crash right then loses nothing a reader saw. Commits of
// various sizes cover appends, frames rewritten in place (a tiny page cache
// spills pages mid-transaction and writes them again), and transactions
// larger than the buffer.
func TestCommitVisibleOnlyOnceInFile(t *testing.T) {
	cases := []struct {
		name    string
		pragmas string
		txs     int
		rowsPer int
		size    int
	}{
		{"small commits", "", 60, 3, 500},
		{"commits of many pages", "", 20, 40, 3000},
		{"cache spills and rewrites", "&_pragma=cache_size(5)", 10, 200, 900},
		{"larger than the buffer", "", 2, 1500, 4000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.db")
			w, r := open(t, path, tc.pragmas)
			rnd := rand.New(rand.NewPCG(1, 2))
			total := 0
			for i := range tc.txs {
				tx, err := w.Begin()
				if err != nil {
					t.Fatal(err)
				}
				for range tc.rowsPer {
					v := make([]byte, tc.size)
					for j := range v {
						v[j] = byte(rnd.IntN(256))
					}
					// Rewrite earlier rows too, so pages change twice.
					if _, err := tx.Exec(`INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)`, total%(tc.rowsPer*3)+1000*i, v); err != nil {
						t.Fatal(err)
					}
					total++
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				var seen int
				if err := r.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&seen); err != nil {
					t.Fatal(err)
				}
				if i%5 == 4 || i == tc.txs-1 {
					rows, check := crashCopy(t, path)
					if rows != seen || check != "ok" {
						t.Fatalf("after commit %d a reader sees %d rows; a crash copy holds %d (integrity: %s)", i, seen, rows, check)
					}
				}
			}
			// The reader sees exactly what the writer wrote.
			var wsum, rsum string
			q := `SELECT COALESCE(group_concat(k || ':' || hex(substr(v, 1, 8))), '') FROM (SELECT k, v FROM t ORDER BY k)`
			if err := w.QueryRow(q).Scan(&wsum); err != nil {
				t.Fatal(err)
			}
			if err := r.QueryRow(q).Scan(&rsum); err != nil {
				t.Fatal(err)
			}
			if wsum != rsum {
				t.Fatal("the reader's rows differ from the writer's")
			}
		})
	}
}

// TestOneWritePerCommit checks that the frames of a commit go to the file
// in one system call, not two per page (what the VFS is for).
func TestOneWritePerCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	w, _ := open(t, path, "")
	v := bytes.Repeat([]byte("x"), 3000)
	const commits, rows = 50, 20 // each commit appends 20+ pages
	before := writeCalls(t)
	for i := range commits {
		tx, err := w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for j := range rows {
			if _, err := tx.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i*rows+j, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(writeCalls(t)-before) / commits
	if per > 3 {
		t.Fatalf("%.1f write calls per commit of %d pages or more, want about 1", per, rows)
	}
	t.Logf("%.2f write calls per commit", per)
}

// TestOtherConnectionsUnaffected: a database opened without the VFS (the
// store's readers and checkpointer) still checkpoints the log the writer
// wrote through it.
func TestOtherConnectionsUnaffected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	w, _ := open(t, path, "")
	for i := range 100 {
		if _, err := w.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	ck, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var busy, logged, done int
	if err := ck.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || logged != done {
		t.Fatalf("checkpoint: busy %d, %d frames logged, %d copied", busy, logged, done)
	}
	if _, err := w.Exec(`INSERT INTO t (k, v) VALUES (1000, 'after')`); err != nil {
		t.Fatal(err)
	}
	rows, check := crashCopy(t, path)
	if rows != 101 || check != "ok" {
		t.Fatalf("after a checkpoint and one more commit: %d rows (want 101), integrity %s", rows, check)
	}
}
