//go:build linux

// Package walvfs is a SQLite VFS for the one connection that writes: the
// default unix VFS, except that the frames a commit appends to the
// write-ahead log are gathered in memory and written with one pwrite
// instead of two per page.
//
// SQLite writes each WAL frame as two system calls (its 24-byte header,
// then the page). A group commit of a dozen FHIR creates appends ~140
// frames, so the writer spent a third of its time in ~280 pwrites of a few
// microseconds each. The frames only need to be in the file before any
// other connection can see them: SQLite publishes a commit by writing the
// wal-index header in shared memory, copy 1, then a barrier (xShmBarrier on
// the database file), then copy 0, and readers accept a header only when
// both copies agree. The buffer is written out in that barrier, so a reader
// that sees the commit finds its frames in the file; it is also written out
// before anything else touches the log (read, size, sync, truncate, close),
// when it reaches its bound, and when a write is not an append to it.
//
// Nothing changes for durability: a commit is still acknowledged only after
// the caller's fsync of the log, which runs after COMMIT returns.
//
// A failed write (a full disk: ENOSPC) must reach SQLite as an error of the
// transaction, never after SQLite has published it. So the frames are also
// written out as soon as the commit frame (a frame header whose "database
// size" field is set) has its page: SQLite is then still inside
// sqlite3WalFrames, and an error makes it fail the COMMIT (SQLITE_FULL)
// and roll back, before the wal-index header names the frames. A failure
// sticks (every later read or write of the log fails too, so a
// transaction that lost frames can never commit) until SQLite releases the
// write lock, when that transaction is over and the frames are dead; the
// next transaction writes them again from the last commit. Should the
// barrier still find frames it cannot write (it cannot return an error),
// it panics rather than let readers see a commit whose frames are missing.
package walvfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Name is the VFS name to pass as ?vfs= in the DSN of the writing connection.
const Name = "ward-walbatch"

// bufferSize bounds the frames held back: a group of 128 creates appends
// about 6 MiB; beyond the bound the buffer is written out and goes on.
const bufferSize = 4 << 20

// frameHeaderSize is the size of a WAL frame's header, which SQLite writes
// by itself before the frame's page; bytes 4-7 are the database size after
// the commit in a commit frame, zero in any other.
const frameHeaderSize = 24

// walWriteLock is the shm lock slot of SQLite's WAL write lock
// (WAL_WRITE_LOCK): its release ends a write transaction.
const walWriteLock = 0

// pwrite writes to a log's descriptor. Tests replace it to fail chosen
// writes (a full disk), which this process-wide VFS cannot be handed.
var pwrite = syscall.Pwrite

// The VFS registry is SQLite's and process-wide, so is what it points at:
// the vfs struct and method tables must stay at one address for as long as
// the process runs.
var (
	registerOnce sync.Once
	registerErr  error
	unixVFS      uintptr // the default VFS every call is delegated to
	theVFS       sqlite3.Tsqlite3_vfs
	// The unix VFS's io methods for logs (no locks) and for databases,
	// learnt from the first open of each, and their wrapped copies.
	unixWAL, unixDB       uintptr
	walMethods, dbMethods sqlite3.Tsqlite3_io_methods

	mu    sync.Mutex
	files = map[uintptr]*file{}  // open files by their sqlite3_file address
	wals  = map[string][]*file{} // open logs by their database's path
)

// file is the state of one file opened through the VFS.
type file struct {
	p      uintptr // its sqlite3_file
	dbPath string
	wal    bool
	// lock guards what follows. Only the connection that owns a log writes
	// to it, but a barrier of another connection on the same database
	// (which would have to use this VFS too) could write it out.
	lock sync.Mutex
	// The log's pending frames: n bytes at buf, for offset start.
	buf   uintptr
	n     int64
	start int64
	err   error // a failed write-out: every later access fails too, until the write lock is released
	// committing: the commit frame's header was written, so every write
	// goes out before it returns, until the commit is published (barrier)
	// or over (write lock released).
	committing bool
}

// Register makes the VFS available (once per process) under Name.
func Register() error {
	registerOnce.Do(func() { registerErr = register() })
	return registerErr
}

func register() error {
	tls := libc.NewTLS()
	defer tls.Close()
	unixVFS = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if unixVFS == 0 {
		return fmt.Errorf("walvfs: no default SQLite VFS")
	}
	theVFS = *at[sqlite3.Tsqlite3_vfs](unixVFS)
	name, err := libc.CString(Name) // kept for the life of the process
	if err != nil {
		return fmt.Errorf("walvfs: %w", err)
	}
	theVFS.FzName, theVFS.FpNext = name, 0
	*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&theVFS.FxOpen)) = xOpen
	if rc := sqlite3.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&theVFS)), 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("walvfs: register: SQLite error %d", rc)
	}
	return nil
}

// Function pointers in modernc's SQLite are Go func values stored in
// uintptr slots; these read one back to call it.
func fnOpen(fp uintptr) func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32 {
	return *(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&fp))
}

func fnFile(fp uintptr) func(*libc.TLS, uintptr) int32 {
	return *(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&fp))
}

func fnBarrier(fp uintptr) func(*libc.TLS, uintptr) {
	return *(*func(*libc.TLS, uintptr))(unsafe.Pointer(&fp))
}

func fnRW(fp uintptr) func(*libc.TLS, uintptr, uintptr, int32, int64) int32 {
	return *(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&fp))
}

func fnTruncate(fp uintptr) func(*libc.TLS, uintptr, int64) int32 {
	return *(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&fp))
}

func fnSync(fp uintptr) func(*libc.TLS, uintptr, int32) int32 {
	return *(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&fp))
}

func fnShmLock(fp uintptr) func(*libc.TLS, uintptr, int32, int32, int32) int32 {
	return *(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&fp))
}

func fnSize(fp uintptr) func(*libc.TLS, uintptr, uintptr) int32 {
	return *(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&fp))
}

func fnControl(fp uintptr) func(*libc.TLS, uintptr, int32, uintptr) int32 {
	return *(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&fp))
}

// at views the C memory at address p as a T. (Converting the address
// through a pointer to it, rather than unsafe.Pointer(p), says the same to
// the compiler without go vet's warning about uintptr conversions: p is C
// memory that Go's collector neither moves nor frees.)
func at[T any](p uintptr) *T {
	return *(**T)(unsafe.Pointer(&p))
}

// unix is the unix VFS's methods for a log; unixDBMethods for a database.
func unix() *sqlite3.Tsqlite3_io_methods {
	return at[sqlite3.Tsqlite3_io_methods](unixWAL)
}

func unixDBMethods() *sqlite3.Tsqlite3_io_methods {
	return at[sqlite3.Tsqlite3_io_methods](unixDB)
}

// xOpen opens the file with the unix VFS, then points the log and the main
// database at the wrapped method tables. Other files (temporary, journal)
// and any file the unix VFS gave other methods (another locking style) are
// left as they are.
func xOpen(tls *libc.TLS, _ uintptr, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	rc := fnOpen(at[sqlite3.Tsqlite3_vfs](unixVFS).FxOpen)(tls, unixVFS, zName, pFile, flags, pOutFlags)
	if rc != sqlite3.SQLITE_OK || zName == 0 {
		return rc
	}
	wal := flags&sqlite3.SQLITE_OPEN_WAL != 0
	if !wal && flags&sqlite3.SQLITE_OPEN_MAIN_DB == 0 {
		return rc
	}
	methods := &at[sqlite3.Tsqlite3_file](pFile).FpMethods
	mu.Lock()
	defer mu.Unlock()
	orig, wrapped, build := &unixDB, &dbMethods, buildDB
	if wal {
		orig, wrapped, build = &unixWAL, &walMethods, buildWAL
	}
	if *orig == 0 {
		*orig = *methods
		build()
	}
	if *methods != *orig {
		return rc
	}
	name := libc.GoString(zName)
	f := &file{p: pFile, dbPath: name, wal: wal}
	if wal {
		f.dbPath = strings.TrimSuffix(name, "-wal")
		wals[f.dbPath] = append(wals[f.dbPath], f)
	}
	*methods = uintptr(unsafe.Pointer(wrapped))
	files[pFile] = f
	return rc
}

func buildWAL() {
	walMethods = *unix()
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&walMethods.FxClose)) = walClose
	*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walMethods.FxRead)) = walRead
	*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walMethods.FxWrite)) = walWrite
	*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&walMethods.FxTruncate)) = walTruncate
	*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walMethods.FxSync)) = walSync
	*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&walMethods.FxFileSize)) = walFileSize
	*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&walMethods.FxFileControl)) = walFileControl
}

func buildDB() {
	dbMethods = *unixDBMethods()
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&dbMethods.FxClose)) = dbClose
	*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&dbMethods.FxShmBarrier)) = dbShmBarrier
	*(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&dbMethods.FxShmLock)) = dbShmLock
}

func lookup(pFile uintptr) *file {
	mu.Lock()
	defer mu.Unlock()
	return files[pFile]
}

// flushLocked is flush under f's lock.
func (f *file) flushLocked() int32 {
	f.lock.Lock()
	defer f.lock.Unlock()
	return f.flush()
}

// flush writes the pending frames out (f.lock held).
func (f *file) flush() int32 {
	if f.err != nil {
		return sqlite3.SQLITE_IOERR_WRITE
	}
	if f.n == 0 {
		return sqlite3.SQLITE_OK
	}
	rc := f.write(unsafe.Slice(at[byte](f.buf), f.n), f.start)
	if rc == sqlite3.SQLITE_OK {
		f.n = 0
	}
	return rc
}

// write writes data at off in the log, straight to its descriptor: the unix
// VFS's xWrite writes at most 128 KiB per call, and for a log (no locks, no
// map) does nothing else. A failure sticks: every later write fails too.
func (f *file) write(data []byte, off int64) int32 {
	fd := int(at[sqlite3.TunixFile](f.p).Fh)
	for len(data) > 0 {
		n, err := pwrite(fd, data, off)
		if err == syscall.EINTR {
			continue
		}
		if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			f.err = fmt.Errorf("walvfs: writing %d bytes of the write-ahead log at offset %d: %w", len(data), off, err)
			if err == syscall.ENOSPC || err == syscall.EDQUOT {
				return sqlite3.SQLITE_FULL
			}
			return sqlite3.SQLITE_IOERR_WRITE
		}
		data, off = data[n:], off+int64(n)
	}
	return sqlite3.SQLITE_OK
}

func walWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := lookup(pFile)
	f.lock.Lock()
	defer f.lock.Unlock()
	if f.err != nil {
		return sqlite3.SQLITE_IOERR_WRITE
	}
	n := int64(iAmt)
	commitHeader := n == frameHeaderSize && binary.BigEndian.Uint32(at[[frameHeaderSize]byte](zBuf)[4:8]) != 0
	if rc := f.buffer(tls, zBuf, n, iOfst); rc != sqlite3.SQLITE_OK {
		return rc
	}
	// Once the commit frame's header is in, what follows (its page, any
	// checksums rewritten) goes out now, while SQLite can still fail the
	// commit; the header waits for its page, so a commit is one write.
	if f.committing {
		if rc := f.flush(); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if commitHeader {
		f.committing = true
	}
	return sqlite3.SQLITE_OK
}

// buffer adds n bytes at zBuf, for offset off, to the pending frames, or
// writes them out (f.lock held).
func (f *file) buffer(tls *libc.TLS, zBuf uintptr, n, off int64) int32 {
	switch {
	case f.n > 0 && off >= f.start && off+n <= f.start+f.n:
		// A frame rewritten in place (SQLite does so for a page written
		// twice in one transaction): patch the buffer.
		libc.Xmemcpy(tls, f.buf+uintptr(off-f.start), zBuf, uint64(n))
		return sqlite3.SQLITE_OK
	case f.n > 0 && off == f.start+f.n && f.n+n <= bufferSize:
	default:
		if rc := f.flush(); rc != sqlite3.SQLITE_OK {
			return rc
		}
		if n > bufferSize {
			return f.write(unsafe.Slice(at[byte](zBuf), n), off)
		}
		f.start = off
	}
	if f.buf == 0 {
		f.buf = libc.Xmalloc(tls, bufferSize)
		if f.buf == 0 {
			return sqlite3.SQLITE_NOMEM
		}
	}
	libc.Xmemcpy(tls, f.buf+uintptr(f.n), zBuf, uint64(n))
	f.n += n
	return sqlite3.SQLITE_OK
}

func walRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := lookup(pFile).flushLocked(); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fnRW(unix().FxRead)(tls, pFile, zBuf, iAmt, iOfst)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := lookup(pFile).flushLocked(); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fnTruncate(unix().FxTruncate)(tls, pFile, size)
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := lookup(pFile).flushLocked(); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fnSync(unix().FxSync)(tls, pFile, flags)
}

func walFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	if rc := lookup(pFile).flushLocked(); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fnSize(unix().FxFileSize)(tls, pFile, pSize)
}

func walFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := lookup(pFile).flushLocked(); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fnControl(unix().FxFileControl)(tls, pFile, op, pArg)
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	f := lookup(pFile)
	rc := f.flushLocked()
	mu.Lock()
	delete(files, pFile)
	list := wals[f.dbPath]
	for i, g := range list {
		if g == f {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(wals, f.dbPath)
	} else {
		wals[f.dbPath] = list
	}
	mu.Unlock()
	if f.buf != 0 {
		libc.Xfree(tls, f.buf)
	}
	if rc2 := fnFile(unix().FxClose)(tls, pFile); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	return rc
}

func dbClose(tls *libc.TLS, pFile uintptr) int32 {
	mu.Lock()
	delete(files, pFile)
	mu.Unlock()
	return fnFile(unixDBMethods().FxClose)(tls, pFile)
}

// logsOf is the open logs of the database file pFile.
func logsOf(pFile uintptr) []*file {
	mu.Lock()
	defer mu.Unlock()
	f := files[pFile]
	if f == nil {
		return nil
	}
	return append([]*file(nil), wals[f.dbPath]...)
}

// dbShmBarrier writes out the logs of this database before SQLite publishes
// the wal-index header that makes their frames visible (see the package
// comment). Only the connection writing a log buffers into it. A commit's
// frames, and whatever follows its commit frame, are out already
// (walWrite), so this should find none; should it, a failure here cannot
// be returned.
func dbShmBarrier(tls *libc.TLS, pFile uintptr) {
	for _, l := range logsOf(pFile) {
		l.lock.Lock()
		var rc int32 = sqlite3.SQLITE_OK
		if l.n > 0 {
			rc = l.flush()
		}
		l.committing = false
		err := l.err
		l.lock.Unlock()
		if rc != sqlite3.SQLITE_OK {
			panic(err)
		}
	}
	fnBarrier(unixDBMethods().FxShmBarrier)(tls, pFile)
}

// dbShmLock passes the lock on; when the write lock is released the write
// transaction is over (committed, whose frames are out, or rolled back),
// so what its log still holds is dead: a failed write is forgotten and the
// next transaction may write again (a disk that had filled may have room).
func dbShmLock(tls *libc.TLS, pFile uintptr, ofst, n, flags int32) int32 {
	rc := fnShmLock(unixDBMethods().FxShmLock)(tls, pFile, ofst, n, flags)
	if flags&sqlite3.SQLITE_SHM_UNLOCK != 0 && flags&sqlite3.SQLITE_SHM_EXCLUSIVE != 0 && ofst <= walWriteLock && walWriteLock < ofst+n {
		for _, l := range logsOf(pFile) {
			l.lock.Lock()
			l.n, l.err, l.committing = 0, nil, false
			l.lock.Unlock()
		}
	}
	return rc
}
