// boltcheck: bbolt's own opinion of a file, for dockerlab's tests (tests/boltcheck.py builds it).
//
// Built offline against Debian's golang-github-coreos-bbolt-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o boltcheck ./tests/tools/boltcheck
//
// Usage: boltcheck [-mutate] [-nextseq a/b/c] FILE
//
// It opens FILE, runs tx.Check() (every page reachable or free, none referenced twice, none past
// the high-water mark), then walks every bucket with a cursor and prints one JSON line per item:
//
//	{"path":["<hex>",...],"key":"<hex>","seq":N}        a nested bucket and its sequence
//	{"path":["<hex>",...],"key":"<hex>","value":"<hex>"} a value
//
// checking on the way that keys come in strictly increasing order and that Get/Bucket find each
// key again (branch keys that route lookups correctly). The first line is a summary:
//
//	{"check":"ok","txid":N,"size":BYTES,"freepages":N}
//
// -nextseq PATH calls NextSequence() on that bucket in a write transaction and prints
// {"nextseq":N}. -mutate then writes: it fills a new bucket with enough keys to split pages,
// deletes it again, and runs tx.Check() once more (bbolt must be able to allocate and free
// pages in the file). Exit status 1 when anything is wrong, with the reasons on stderr.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
)

type item struct {
	Path  []string `json:"path"`
	Key   string   `json:"key"`
	Seq   *uint64  `json:"seq,omitempty"`
	Value *string  `json:"value,omitempty"`
}

var failed bool

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "boltcheck: "+format+"\n", args...)
	failed = true
}

func check(db *bolt.DB, when string) {
	err := db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			fail("%s: tx.Check: %v", when, e)
		}
		return nil
	})
	if err != nil {
		fail("%s: view: %v", when, err)
	}
}

func walk(b *bolt.Bucket, path []string, out *json.Encoder) {
	var last []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		where := strings.Join(append(append([]string{}, path...), hex.EncodeToString(k)), "/")
		if last != nil && bytes.Compare(last, k) >= 0 {
			fail("%s: key out of order after %x", where, last)
		}
		last = append([]byte{}, k...)
		it := item{Path: path, Key: hex.EncodeToString(k)}
		if v == nil {
			child := b.Bucket(k)
			if child == nil {
				fail("%s: cursor says bucket, Bucket() finds none", where)
				continue
			}
			seq := child.Sequence()
			it.Seq = &seq
			if err := out.Encode(it); err != nil {
				fail("%v", err)
			}
			walk(child, append(append([]string{}, path...), hex.EncodeToString(k)), out)
			continue
		}
		if got := b.Get(k); !bytes.Equal(got, v) {
			fail("%s: Get() returns %x, cursor %x", where, got, v)
		}
		s := hex.EncodeToString(v)
		it.Value = &s
		if err := out.Encode(it); err != nil {
			fail("%v", err)
		}
	}
}

func bucketAt(tx *bolt.Tx, path string) *bolt.Bucket {
	parts := strings.Split(path, "/")
	b := tx.Bucket([]byte(parts[0]))
	for _, p := range parts[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket([]byte(p))
	}
	return b
}

func main() {
	mutate := flag.Bool("mutate", false, "write to the file, then check it again")
	nextseq := flag.String("nextseq", "", "bucket path (a/b/c) to call NextSequence on")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: boltcheck [-mutate] [-nextseq a/b/c] FILE")
		os.Exit(2)
	}
	path := flag.Arg(0)
	if _, err := os.Stat(path); err != nil { // bolt.Open would create it
		fmt.Fprintf(os.Stderr, "boltcheck: %v\n", err)
		os.Exit(1)
	}
	writable := *mutate || *nextseq != ""
	db, err := bolt.Open(path, 0600, &bolt.Options{ReadOnly: !writable})
	if err != nil {
		fmt.Fprintf(os.Stderr, "boltcheck: open %s: %v\n", path, err)
		os.Exit(1)
	}
	defer db.Close()

	check(db, "as written")
	out := json.NewEncoder(os.Stdout)
	err = db.View(func(tx *bolt.Tx) error {
		summary := map[string]interface{}{
			"check": "ok", "txid": tx.ID(), "size": tx.Size(), "freepages": db.Stats().FreePageN,
		}
		if failed {
			summary["check"] = "failed"
		}
		if err := out.Encode(summary); err != nil {
			return err
		}
		root := tx.Cursor()
		for k, v := root.First(); k != nil; k, v = root.Next() {
			if v != nil {
				fail("top level: %x is a value, not a bucket", k)
				continue
			}
			b := tx.Bucket(k)
			seq := b.Sequence()
			if err := out.Encode(item{Path: []string{}, Key: hex.EncodeToString(k), Seq: &seq}); err != nil {
				return err
			}
			walk(b, []string{hex.EncodeToString(k)}, out)
		}
		return nil
	})
	if err != nil {
		fail("walk: %v", err)
	}

	if *nextseq != "" {
		err = db.Update(func(tx *bolt.Tx) error {
			b := bucketAt(tx, *nextseq)
			if b == nil {
				return fmt.Errorf("no bucket %s", *nextseq)
			}
			n, err := b.NextSequence()
			if err == nil {
				err = out.Encode(map[string]uint64{"nextseq": n})
			}
			return err
		})
		if err != nil {
			fail("nextseq: %v", err)
		}
		check(db, "after NextSequence")
	}
	if *mutate {
		probe := []byte("boltcheck-probe")
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(probe)
			if err != nil {
				return err
			}
			for i := 0; i < 2000; i++ {
				if err := b.Put([]byte(fmt.Sprintf("key-%06d", i)), bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			fail("mutate: fill: %v", err)
		}
		check(db, "after filling a new bucket")
		if err = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(probe) }); err != nil {
			fail("mutate: delete: %v", err)
		}
		check(db, "after deleting it")
	}
	if failed {
		os.Exit(1)
	}
}
