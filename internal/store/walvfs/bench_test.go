//go:build linux

package walvfs

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"testing"
)

// BenchmarkCommit commits 20 rows of 3 KB per transaction through this VFS
// and, as its peer in the same run, through SQLite's default one: the
// ratio is what gathering the frames saves (and what writing them out at
// the commit frame, for a full disk's sake, costs).
func BenchmarkCommit(b *testing.B) {
	for _, vfs := range []struct{ name, dsn string }{{"walvfs", "vfs=" + Name + "&"}, {"unix", ""}} {
		b.Run(vfs.name, func(b *testing.B) {
			if err := Register(); err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(b.TempDir(), "b.db")
			db, err := sql.Open("sqlite", "file:"+path+"?"+vfs.dsn+"_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)`); err != nil {
				b.Fatal(err)
			}
			v := bytes.Repeat([]byte("x"), 3000)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				for j := range 20 {
					if _, err := tx.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i*20+j, v); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
