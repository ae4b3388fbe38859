package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// kinesisClient is a client of the emulator with the test's credentials
// (the same ones the pulse processes get from the environment).
func kinesisClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDPULSESYSTEM", SecretAccessKey: "secret"}, nil
		}),
	})
}

// awsEnv points the pulse processes started after it at endpoint, through
// the SDK's standard configuration.
func awsEnv(t *testing.T, endpoint string) {
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDPULSESYSTEM")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// failingProxy sits between the producers and the emulator and makes
// PutRecords fail per record, as Kinesis does under throttling: every
// every-th call, the first record is not forwarded and is answered with
// ProvisionedThroughputExceededException (FailedRecordCount > 0), so the
// producer must retry exactly that record. Other calls pass through.
type failingProxy struct {
	target *url.URL
	every  int

	mu     sync.Mutex
	calls  int
	failed int
}

func startFailingProxy(t *testing.T, endpoint string, every int) (*failingProxy, string) {
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &failingProxy{target: u, every: every}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *failingProxy) failedRecords() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

func (p *failingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rp := httputil.NewSingleHostReverseProxy(p.target)
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var in map[string]json.RawMessage
	var recs []json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil || json.Unmarshal(in["Records"], &recs) != nil || len(recs) < 1 {
		p.forward(w, r, body)
		return
	}
	p.mu.Lock()
	p.calls++
	fail := p.calls%p.every == 0
	if fail {
		p.failed++
	}
	p.mu.Unlock()
	if !fail {
		p.forward(w, r, body)
		return
	}
	failed := json.RawMessage(`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard (injected by the test)"}`)
	var results []json.RawMessage
	if len(recs) > 1 {
		in["Records"], _ = json.Marshal(recs[1:])
		nb, _ := json.Marshal(in)
		rec := httptest.NewRecorder()
		p.forward(rec, r, nb)
		var out struct {
			FailedRecordCount int
			Records           []json.RawMessage
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		results = append([]json.RawMessage{failed}, out.Records...)
		writeJSON(w, map[string]any{"FailedRecordCount": out.FailedRecordCount + 1, "Records": results})
		return
	}
	writeJSON(w, map[string]any{"FailedRecordCount": 1, "Records": []json.RawMessage{failed}})
}

// forward sends body to the emulator as r's request. The emulator does not
// check request signatures, so a rewritten body passes.
func (p *failingProxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Length", strconv.Itoa(len(body)))
	httputil.NewSingleHostReverseProxy(p.target).ServeHTTP(w, r2)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}
