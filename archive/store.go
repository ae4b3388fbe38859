package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pulsehq/pulse/internal/outbound"
)

// ErrNotFound is returned (wrapped) by Get for a key that does not exist.
var ErrNotFound = errors.New("archive: object not found")

// ObjectStore is what the archive needs from object storage. Keys are
// relative to the store's root or prefix and use '/' as separator.
// Implementations are safe for concurrent use.
type ObjectStore interface {
	// PutIfAbsent stores body under key unless key exists. It reports
	// created=false, and no error, when the key was already there: the
	// archive's objects are deterministic, so an existing object has the
	// same records and the rewrite after a crash is a no-op. meta is stored
	// as object metadata where the store has any (S3 user metadata).
	PutIfAbsent(ctx context.Context, key string, body []byte, contentType string, meta map[string]string) (created bool, err error)
	// Get opens the object; it wraps ErrNotFound when key is absent.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key  string // relative to the store's prefix
	Size int64
}

// ParseURL opens the store an archive URL names:
//
//	s3://BUCKET/PREFIX  S3, configured the standard SDK way (region,
//	                    credentials chain, AWS_ENDPOINT_URL_S3); path-style
//	                    addressing when AWS_ENDPOINT_URL_S3 is set, as
//	                    emulators and most S3-compatible stores need
//	file:///abs/dir     a local directory with the same layout
//	file://rel/dir      a directory relative to the working directory
func ParseURL(ctx context.Context, raw string) (ObjectStore, error) {
	switch {
	case strings.HasPrefix(raw, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(raw, "s3://"), "/")
		if bucket == "" {
			return nil, fmt.Errorf("archive url %q: want s3://BUCKET/PREFIX", raw)
		}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(outbound.AWSHTTPClient(outbound.S3TotalTimeout)))
		if err != nil {
			return nil, fmt.Errorf("archive url %q: load aws config: %w", raw, err)
		}
		pathStyle := os.Getenv("AWS_ENDPOINT_URL_S3") != ""
		client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
		return NewS3(client, bucket, prefix), nil
	case strings.HasPrefix(raw, "file://"):
		dir := strings.TrimPrefix(raw, "file://")
		if dir == "" {
			return nil, fmt.Errorf("archive url %q: want file:///DIR or file://DIR", raw)
		}
		return NewDir(dir), nil
	}
	return nil, fmt.Errorf("archive url %q: want s3://BUCKET/PREFIX or file://DIR", raw)
}
