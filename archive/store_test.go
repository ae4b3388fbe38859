package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"golang.org/x/sync/errgroup"
)

var (
	_ ObjectStore = (*DirStore)(nil)
	_ ObjectStore = (*S3Store)(nil)
)

// startS3 runs gofakes3 in process and returns its URL and a client for it
// with one bucket created.
func startS3(t testing.TB, bucket string) (string, *s3.Client) {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return srv.URL, client
}

// testStores are the backends every store test runs against.
func testStores(t testing.TB) []struct {
	name  string
	store ObjectStore
} {
	_, client := startS3(t, "archive")
	return []struct {
		name  string
		store ObjectStore
	}{
		{"dir", NewDir(filepath.Join(t.TempDir(), "archive"))},
		{"s3", NewS3(client, "archive", "raw/events")},
	}
}

func TestStorePutIfAbsent(t *testing.T) {
	ctx := context.Background()
	for _, tc := range testStores(t) {
		t.Run(tc.name, func(t *testing.T) {
			key := "dt=2026-11-27/hr=15/a.parquet"
			created, err := tc.store.PutIfAbsent(ctx, key, []byte("first"), ContentType, map[string]string{"records": "1"})
			if err != nil || !created {
				t.Fatalf("first put: created=%v err=%v, want true, nil", created, err)
			}
			created, err = tc.store.PutIfAbsent(ctx, key, []byte("second"), ContentType, nil)
			if err != nil || created {
				t.Fatalf("second put: created=%v err=%v, want false, nil", created, err)
			}
			if got := get(t, tc.store, key); string(got) != "first" {
				t.Fatalf("get after second put = %q, want the first body", got)
			}
			_, err = tc.store.Get(ctx, "dt=2026-11-27/hr=15/missing.parquet")
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("get missing: err=%v, want ErrNotFound", err)
			}
		})
	}
}

// TestStorePutRace checks that "absent" is decided atomically: of many
// concurrent puts of one key exactly one creates it.
func TestStorePutRace(t *testing.T) {
	ctx := context.Background()
	for _, tc := range testStores(t) {
		t.Run(tc.name, func(t *testing.T) {
			const n = 8
			var wg sync.WaitGroup
			results := make([]bool, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					results[i], errs[i] = tc.store.PutIfAbsent(ctx, "dt=2026-11-27/hr=16/race.parquet", fmt.Appendf(nil, "body %d", i), ContentType, nil)
				})
			}
			wg.Wait()
			var winners int
			var body string
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("put %d: %v", i, errs[i])
				}
				if results[i] {
					winners++
					body = fmt.Sprintf("body %d", i)
				}
			}
			if winners != 1 {
				t.Fatalf("%d puts created the key, want exactly 1", winners)
			}
			if got := get(t, tc.store, "dt=2026-11-27/hr=16/race.parquet"); string(got) != body {
				t.Fatalf("stored %q, want the winner's %q", got, body)
			}
		})
	}
}

func TestStoreList(t *testing.T) {
	ctx := context.Background()
	for _, tc := range testStores(t) {
		t.Run(tc.name, func(t *testing.T) {
			// More than one ListObjectsV2 page (1,000 keys).
			const n = 1050
			var want []string
			for i := range n {
				want = append(want, fmt.Sprintf("dt=2026-11-27/hr=15/s-%05d.parquet", i))
			}
			putAll(t, tc.store, want)
			for _, key := range []string{"dt=2026-11-27/hr=16/x.parquet", "dt=2026-11-28/hr=15/y.parquet"} {
				if _, err := tc.store.PutIfAbsent(ctx, key, []byte("xy"), ContentType, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				prefix string
				want   int
			}{
				{"dt=2026-11-27/hr=15/", n},
				{"dt=2026-11-27/", n + 1},
				{"dt=2026-11-2", n + 2},
				{"", n + 2},
				{"dt=2026-11-27/hr=15/s-0100", 10},
				{"dt=2026-11-29/", 0},
			} {
				got, err := tc.store.List(ctx, c.prefix)
				if err != nil {
					t.Fatalf("list %q: %v", c.prefix, err)
				}
				if len(got) != c.want {
					t.Fatalf("list %q: %d objects, want %d", c.prefix, len(got), c.want)
				}
				for i := 1; i < len(got); i++ {
					if got[i-1].Key >= got[i].Key {
						t.Fatalf("list %q not sorted at %d: %q, %q", c.prefix, i, got[i-1].Key, got[i].Key)
					}
				}
			}
			got, err := tc.store.List(ctx, "dt=2026-11-27/hr=15/")
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range got {
				if o.Key != want[i] || o.Size != 1 {
					t.Fatalf("object %d = %+v, want key %q size 1", i, o, want[i])
				}
			}
		})
	}
}

// TestDirStoreSkipsTemp checks that a temp file left by a crash mid-put is
// neither listed nor blocking the put of its key.
func TestDirStoreSkipsTemp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := NewDir(dir)
	hour := filepath.Join(dir, "dt=2026-11-27", "hr=15")
	if err := os.MkdirAll(hour, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hour, tmpPrefix+"123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := d.List(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("list = %v, %v; want nothing", got, err)
	}
	if created, err := d.PutIfAbsent(ctx, "dt=2026-11-27/hr=15/a.parquet", []byte("a"), ContentType, nil); !created || err != nil {
		t.Fatalf("put = %v, %v", created, err)
	}
	for _, bad := range []string{"", "/abs", "../up", "a/../b", "dt=x/.hidden", "a//b"} {
		if _, err := d.PutIfAbsent(ctx, bad, nil, ContentType, nil); !errors.Is(err, ErrBadKey) {
			t.Errorf("put %q: err=%v, want ErrBadKey", bad, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	ctx := context.Background()
	url, client := startS3(t, "bkt")
	t.Setenv("AWS_ENDPOINT_URL_S3", url)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	abs := t.TempDir()
	t.Chdir(t.TempDir())

	for _, c := range []struct {
		raw     string
		wantErr bool
		check   func(t *testing.T)
	}{
		{raw: "s3://bkt/pre/fix", check: func(t *testing.T) {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("pre/fix/k")})
			if err != nil {
				t.Fatalf("object not under the prefix: %v", err)
			}
			out.Body.Close()
		}},
		{raw: "file://" + abs, check: func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(abs, "k")); err != nil {
				t.Fatal(err)
			}
		}},
		{raw: "file://rel/dir", check: func(t *testing.T) {
			if _, err := os.Stat(filepath.Join("rel", "dir", "k")); err != nil {
				t.Fatal(err)
			}
		}},
		{raw: "s3:///nobucket", wantErr: true},
		{raw: "file://", wantErr: true},
		{raw: "gs://bkt/x", wantErr: true},
		{raw: "/plain/path", wantErr: true},
	} {
		t.Run(c.raw, func(t *testing.T) {
			store, err := ParseURL(ctx, c.raw)
			if c.wantErr {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %T, want an error", c.raw, store)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if created, err := store.PutIfAbsent(ctx, "k", []byte("v"), ContentType, nil); !created || err != nil {
				t.Fatalf("put: %v, %v", created, err)
			}
			c.check(t)
		})
	}
}

func get(t testing.TB, store ObjectStore, key string) []byte {
	t.Helper()
	rc, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return bytes.Clone(b)
}

// putAll puts a one-byte object under each key, eight at a time.
func putAll(t *testing.T, store ObjectStore, keys []string) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for i, key := range keys {
		g.Go(func() error {
			_, err := store.PutIfAbsent(context.Background(), key, []byte{byte(i)}, ContentType, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestDirStorePrivate: the archive holds every site's raw events, so each
// directory a put creates is 0700 and each object 0600.
func TestDirStorePrivate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "archive")
	key := "dt=2026-11-27/hr=15/a.parquet"
	if _, err := NewDir(root).PutIfAbsent(context.Background(), key, []byte("a"), ContentType, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rel  string
		want os.FileMode
	}{{".", 0o700}, {"dt=2026-11-27", 0o700}, {"dt=2026-11-27/hr=15", 0o700}, {key, 0o600}} {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(c.rel)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.want {
			t.Errorf("%s is %v, want %v", c.rel, fi.Mode().Perm(), c.want)
		}
	}
}
