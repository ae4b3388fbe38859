package namespace

import (
	"context"
	"testing"
)

// memBackend holds a registry document in memory, for the fuzz target.
type memBackend struct{ doc []byte }

func (m *memBackend) Load(context.Context) ([]byte, error)   { return m.doc, nil }
func (m *memBackend) Save(_ context.Context, b []byte) error { m.doc = b; return nil }

// FuzzRegistry decodes arbitrary registry documents (a damaged file in the
// data dir, a foreign value in Redis): no panic, and a document that
// decodes bootstraps to a current namespace that the registry lists.
func FuzzRegistry(f *testing.F) {
	f.Add([]byte(`{"current":"v1","namespaces":[{"name":"v1","state":"current","created":"2026-11-27T20:00:00Z","metrics":["events"]}]}`))
	f.Add([]byte(`{"current":"v9","namespaces":[]}`))
	f.Add([]byte(`{"namespaces":[{"name":"v2","state":"ready","metrics_config":"builtins: true"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ctx := context.Background()
		r := New(&memBackend{doc: doc}, Config{})
		d, err := r.Load(ctx)
		if err != nil {
			return
		}
		for _, i := range d.Namespaces {
			_, _ = i.Catalog()
		}
		cur, err := r.Bootstrap(ctx, "v1", "")
		if err != nil {
			return
		}
		d, err = r.Load(ctx)
		if err != nil {
			t.Fatalf("reload after bootstrap: %v", err)
		}
		if _, ok := d.Find(cur.Name); !ok || d.Current != cur.Name {
			t.Fatalf("bootstrap gave %q, registry %+v", cur.Name, d)
		}
	})
}
