package zambda

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/zambda/codezip"
)

// codeCache keeps unpacked code by the zip's sha256 under WorkDir/code, so
// every version is unpacked once per replica (again after a restart, from
// Z3, which holds the zip).
type codeCache struct {
	root string
	mu   sync.Mutex
	busy map[string]*sync.Mutex
}

func newCodeCache(workDir string) *codeCache {
	return &codeCache{root: filepath.Join(workDir, "code"), busy: map[string]*sync.Mutex{}}
}

func (c *codeCache) lock(sum string) func() {
	c.mu.Lock()
	m := c.busy[sum]
	if m == nil {
		m = &sync.Mutex{}
		c.busy[sum] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// dir returns the unpacked code of obj, unpacking it if needed.
func (c *codeCache) dir(ctx context.Context, obj z3.Object) (string, error) {
	dst := filepath.Join(c.root, obj.SHA256)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	defer c.lock(obj.SHA256)()
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return "", fmt.Errorf("code dir: %w", err)
	}
	zipFile, err := os.CreateTemp(c.root, ".zip-*")
	if err != nil {
		return "", fmt.Errorf("code dir: %w", err)
	}
	defer os.Remove(zipFile.Name())
	defer zipFile.Close()
	rc, err := obj.Read(ctx, 0, -1)
	if err != nil {
		return "", err
	}
	lim := codezip.DefaultLimits()
	n, err := io.Copy(zipFile, io.LimitReader(rc, lim.MaxZipBytes+1))
	rc.Close()
	if err != nil {
		return "", fmt.Errorf("read code zip: %w", err)
	}
	if n > lim.MaxZipBytes {
		return "", fault.Invalid("the code zip is larger than %d MiB", lim.MaxZipBytes>>20)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := filepath.Join(c.root, ".unpack-"+hex.EncodeToString(b))
	if _, err := codezip.Unpack(ctx, zipFile, n, tmp, lim); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(dst); statErr == nil {
			return dst, nil // another replica sharing the work dir unpacked it first
		}
		return "", fmt.Errorf("code dir: %w", err)
	}
	return dst, nil
}

// codeUploaded runs when a zip lands in the code bucket (the PUT to the URL
// from s3-upload): it validates and unpacks the zip, then activates it or
// marks the function Failed with a reason the user can act on.
func (s *Service) codeUploaded(ctx context.Context, o store.Object) error {
	zambdaID, _, _ := strings.Cut(o.Path, "/")
	z, err := s.st.GetZambda(ctx, o.ProjectID, zambdaID)
	if err != nil {
		_, _ = s.z3.DeleteFolder(ctx, o.ProjectID, CodeBucket, o.Path, func(string) error { return nil })
		return notFound(err, zambdaID)
	}
	z.Status, z.StatusReason, z.UpdatedAt = "Validating", "", s.now()
	if err := s.st.UpdateZambda(ctx, z); err != nil {
		return err
	}
	obj, err := s.z3.Get(ctx, o.ProjectID, CodeBucket, o.Path)
	if err != nil {
		return err
	}
	problem := ""
	dir, err := s.code.dir(ctx, obj)
	switch {
	case err == nil:
		if err := codezip.CheckHandler(dir, z.Runtime, "index.index"); err != nil {
			problem = err.Error()
		}
	case isUserError(err):
		problem = err.Error()
	default:
		return err
	}
	old := z.CodePath
	z.UpdatedAt = s.now()
	if problem != "" {
		z.Status, z.StatusReason = "Failed", "the uploaded code was refused: "+problem
		s.log.InfoContext(ctx, "zambda code refused", "zambda", z.ID, "reason", problem)
		_ = s.z3.Delete(ctx, o.ProjectID, CodeBucket, o.Path)
		return s.st.UpdateZambda(ctx, z)
	}
	z.Status, z.StatusReason, z.CodePath = "Active", "", o.Path
	z.FileName, z.FileSize, z.FileModified, z.FileChecksum = z.UploadName, o.Size, o.UpdatedAt, o.SHA256
	if z.FileName == "" {
		z.FileName = z.Name + ".zip"
	}
	if err := s.st.UpdateZambda(ctx, z); err != nil {
		return err
	}
	if old != "" && old != o.Path {
		_ = s.z3.Delete(ctx, o.ProjectID, CodeBucket, old)
	}
	return nil
}

// isUserError tells a zip the user must fix from a server failure.
func isUserError(err error) bool {
	var ze *codezip.Error
	return errors.As(err, &ze) || errors.Is(err, fault.ErrInvalid)
}
