//go:build !linux

package walvfs

// Name is empty where the VFS is not built: the writer then uses SQLite's
// default VFS, which writes each WAL frame itself.
const Name = ""

// Register does nothing here.
func Register() error { return nil }
