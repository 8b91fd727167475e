package boltstore

import (
	"errors"
	"fmt"
)

// ErrCorrupt is what every error about a damaged store file wraps: test
// for it with errors.Is. The error itself is a *CorruptError, which says
// which file, what is damaged and what to do.
var ErrCorrupt = errors.New("boltstore: store file is damaged")

// CorruptError reports damage in a store file: a page that breaks bbolt's
// layout (found by Open before bbolt reads the file), or a record whose
// content cannot be read (found by the method that read it).
type CorruptError struct {
	// Path is the store file.
	Path string
	// What is damaged, for example "page 12 of 40 (bucket queue.msg):
	// branch page with 0 elements", "meta pages: page 0: checksum ...;
	// page 1: ..." or "record queue.msg/m1: invalid JSON: ...".
	What string
	// Record is set when the damage is confined to one record (Bucket and
	// Key); the rest of the file is readable.
	Record bool
	Bucket string
	Key    []byte
}

func (e *CorruptError) Error() string {
	if e.Record {
		return fmt.Sprintf("boltstore: %s: damaged record %s/%q: %s; the rest of the store is usable, "+
			"and boltstore.Salvage copies every readable message and record to a new file", e.Path, e.Bucket, e.Key, e.What)
	}
	return fmt.Sprintf("boltstore: %s is damaged: %s; the file was left untouched: move it aside and start with a new file, "+
		"then copy the mail that can still be read out of it with boltstore.Salvage(damaged, fresh)", e.Path, e.What)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// recordError reports that the value of key in bucket cannot be read.
func recordError(path string, bucket []byte, key []byte, what string, err error) *CorruptError {
	if err != nil {
		what += ": " + err.Error()
	}
	return &CorruptError{Path: path, What: what, Record: true, Bucket: string(bucket), Key: append([]byte(nil), key...)}
}
