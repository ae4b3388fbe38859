package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// asset is one embedded file ready to serve, with its gzip form precomputed
// when that is smaller. It is immutable and safe for concurrent use.
type asset struct {
	name, contentType, cacheControl string
	body, gz                        []byte
	etag                            string
}

// contentType is set from a fixed table, not the system's MIME tables, so the
// answer is the same on every machine.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "application/javascript"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".map", ".json":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	}
	return "application/octet-stream"
}

func newAsset(fsys fs.FS, name, cacheControl string) (*asset, error) {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", name, err)
	}
	return bytesAsset(name, cacheControl, body), nil
}

// bytesAsset is the asset name with contents body.
func bytesAsset(name, cacheControl string, body []byte) *asset {
	ct := contentType(name)
	sum := sha256.Sum256(body)
	a := &asset{name: name, contentType: ct, cacheControl: cacheControl, body: body, etag: hex.EncodeToString(sum[:8])}
	if strings.HasPrefix(ct, "text/") || strings.HasPrefix(ct, "application/") || ct == "image/svg+xml" {
		if gz := gzipBytes(body); len(gz) < len(body) {
			a.gz = gz
		}
	}
	return a
}

// mustAsset is for files the embed directive guarantees (and tests' trees),
// so a failure is a bug in this package, not a runtime condition.
func mustAsset(fsys fs.FS, name, cacheControl string) *asset {
	a, err := newAsset(fsys, name, cacheControl)
	if err != nil {
		panic(err)
	}
	return a
}

// dirAssets returns every regular file of fsys (recursively) by its slash
// path, except the names in skip.
func dirAssets(fsys fs.FS, cacheControl string, skip ...string) map[string]*asset {
	out := map[string]*asset{}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, s := range skip {
			if p == s {
				return nil
			}
		}
		out[p] = mustAsset(fsys, p, cacheControl)
		return nil
	})
	return out
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	// Writes to a bytes.Buffer cannot fail, and the level is valid.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", a.cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	body, etag := a.body, a.etag
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = a.gz, a.etag+"-gz"
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip, reading
// an explicit q=0 as a refusal.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
