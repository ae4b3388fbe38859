package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulsehq/pulse/loadgen"
)

func startPulseTarget(ctx context.Context, pulse string, batch int) (*pushTarget, error) {
	data, err := os.MkdirTemp("", "pulse-bench-fanout-")
	if err != nil {
		return nil, err
	}
	p, err := startChild(ctx, pulse, "/readyz", serveArgs(data)...)
	if err != nil {
		os.RemoveAll(data)
		return nil, err
	}
	site := "bench-" + randHex(4)
	var seq atomic.Int64
	return &pushTarget{
		name:     "pulse",
		pid:      p.pid(),
		wsURL:    "ws://" + p.addr + "/v1/ws?token=" + readToken,
		protocol: loadgen.PulseProtocol{Site: site, Metric: "events", Step: "10s", Window: "1m"},
		feed:     func(int64) ([]byte, int) { return pushEvents(&seq, site, batch), batch },
		feedCfg:  loadgen.FeedConfig{URL: "http://" + p.addr + "/v1/collect", Header: browserHeader(), Concurrency: 16},
		stop:     func() { p.stop(); os.RemoveAll(data) },
	}, nil
}

// centrifugoChannel is in the namespace centrifugoConfig opens to
// anonymous subscribers.
const centrifugoChannel = "bench:live"

// centrifugoConfig is a Centrifugo v6 configuration serving on 127.0.0.1:port
// with an HTTP API under apiKey and centrifugoChannel open to anonymous
// subscribers.
func centrifugoConfig(port int, apiKey string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"http_api":    map[string]any{"key": apiKey},
		"client":      map[string]any{"allow_anonymous_connect_without_token": true, "allowed_origins": []string{"*"}},
		"channel": map[string]any{"namespaces": []map[string]any{{
			"name": "bench", "allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true,
		}}},
		"health":      map[string]any{"enabled": true},
		"usage_stats": map[string]any{"disabled": true},
	}, "", "  ")
}

// centrifugoFeed returns the bodies of publish requests to Centrifugo's
// HTTP API, padded so that the push frame a subscriber receives for each is
// size bytes when its message number has 6 digits, up to 5 fewer before
// (and never below the frame's overhead).
func centrifugoFeed(size int) func(i int64) ([]byte, int) {
	overhead := len(fmt.Sprintf(`{"push":{"channel":%q,"pub":{"data":{"n":%d,"pad":""}}}}`, centrifugoChannel, 100000))
	pad := strings.Repeat("x", max(size-overhead, 0))
	return func(i int64) ([]byte, int) {
		return fmt.Appendf(nil, `{"channel":%q,"data":{"n":%d,"pad":%q}}`, centrifugoChannel, i+1, pad), 1
	}
}

func startCentrifugoTarget(ctx context.Context, bin string, size int) (*pushTarget, error) {
	bin, err := findCentrifugo(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pulse-bench-centrifugo-")
	if err != nil {
		return nil, err
	}
	ch, logf, err := runCentrifugo(ctx, bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cleanup := func() { ch.stop(); logf.Close(); os.RemoveAll(dir) }
	if err := waitHTTP("http://"+ch.addr+"/health", 30*time.Second, func(code int) bool { return code == http.StatusOK }); err != nil {
		tail, _ := os.ReadFile(logf.Name())
		cleanup()
		return nil, fmt.Errorf("centrifugo did not start: %w; log: %.600s", err, tail)
	}
	return &pushTarget{
		name:     "centrifugo",
		pid:      ch.pid(),
		wsURL:    "ws://" + ch.addr + "/connection/websocket",
		protocol: loadgen.CentrifugoProtocol{Channel: centrifugoChannel},
		feed:     centrifugoFeed(size),
		feedCfg: loadgen.FeedConfig{
			URL:         "http://" + ch.addr + "/api/publish",
			Header:      http.Header{"X-Api-Key": {ch.apiKey}},
			ContentType: "application/json",
			Concurrency: 16,
			Accept:      func(b []byte) bool { return !strings.Contains(string(b), `"error"`) },
		},
		stop: cleanup,
	}, nil
}

// centrifugoChild is a running Centrifugo and the key of its HTTP API.
type centrifugoChild struct {
	*child
	apiKey string
}

// runCentrifugo starts bin with a fresh configuration in dir on a free
// port, logging to a file in dir, which it returns open.
func runCentrifugo(ctx context.Context, bin, dir string) (centrifugoChild, *os.File, error) {
	port, err := freePort()
	if err != nil {
		return centrifugoChild{}, nil, err
	}
	apiKey := randHex(16)
	conf, err := centrifugoConfig(port, apiKey)
	if err != nil {
		return centrifugoChild{}, nil, fmt.Errorf("centrifugo config: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, conf, 0o600); err != nil {
		return centrifugoChild{}, nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "centrifugo.log"))
	if err != nil {
		return centrifugoChild{}, nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return centrifugoChild{}, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return centrifugoChild{child: &child{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}, apiKey: apiKey}, logf, nil
}

// findCentrifugo returns bin when set, else the binary the docs install
// under $HOME/.cache/pulse/bin, else the one on PATH.
func findCentrifugo(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "pulse", "bin", "centrifugo")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("centrifugo")
	if err != nil {
		return "", errors.New("centrifugo not found: GOBIN=$HOME/.cache/pulse/bin go install github.com/centrifugal/centrifugo/v6@v6.9.1, or pass --centrifugo")
	}
	return p, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
