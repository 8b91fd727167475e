//go:build !unix

package boltstore

import (
	"os"
	"time"
)

// lockFile does nothing here: bbolt still locks the file when it opens it,
// but the checker, which runs before, may read a file another process is
// writing and call it damaged.
func lockFile(*os.File, time.Duration) error { return nil }
