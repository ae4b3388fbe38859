package push

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// BenchmarkConnMemory opens 2,000 subscribed connections against an
// in-process hub and reports the Go heap and stacks (HeapInuse+StackInuse)
// they add, per connection, and the goroutines per connection. The clients
// are raw TCP sockets that speak just enough WebSocket to subscribe, so
// almost all of the figure is the server's. Run it once:
//
//	go test -run '^$' -bench ConnMemory -benchtime 1x ./push
func BenchmarkConnMemory(b *testing.B) {
	const n = 2000
	e := newEnv(b)
	_, ts := e.hub(Config{})
	addr := strings.TrimPrefix(ts.URL, "http://")
	sub := []byte(`{"op":"subscribe","id":"s","site":"demo","metric":"pageviews","step":"10s","window":"15m","group_by":["path"]}`)

	for b.Loop() {
		h0, s0, g0 := memInUse()
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := rawWS(addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := c.Write(maskedText(sub)); err != nil {
				b.Fatal(err)
			}
		}
		// The snapshot answers the subscribe: every connection is live.
		for _, c := range conns {
			if err := readFrame(c); err != nil {
				b.Fatal(err)
			}
		}
		h1, s1, g1 := memInUse()
		if p := os.Getenv("PUSH_HEAPPROFILE"); p != "" {
			writeHeapProfile(b, p)
		}
		b.ReportMetric(float64(h1+s1-h0-s0)/n/1024, "KiB/conn")
		b.ReportMetric(float64(h1-h0)/n/1024, "heapKiB/conn")
		b.ReportMetric(float64(s1-s0)/n/1024, "stackKiB/conn")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/conn")
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func memInUse() (heap, stack uint64, goroutines int) {
	// Several cycles: the GC shrinks idle stacks by half per cycle, as it
	// does in a long-running server.
	for range 6 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
}

// rawWS performs a WebSocket handshake on a plain TCP connection.
func rawWS(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, fmt.Errorf("write handshake: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Read byte by byte so no frame bytes are left in a bufio buffer.
	var head []byte
	var one [1]byte
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(one[:]); err != nil {
			return nil, fmt.Errorf("read handshake: %w", err)
		}
		head = append(head, one[0])
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(head))), nil)
	if err != nil {
		return nil, fmt.Errorf("parse handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	return c, nil
}

// maskedText encodes p as one masked text frame (p shorter than 126 bytes
// or up to 64 KiB).
func maskedText(p []byte) []byte {
	f := []byte{0x81}
	if len(p) < 126 {
		f = append(f, 0x80|byte(len(p)))
	} else {
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(p)))
	}
	mask := []byte{1, 2, 3, 4}
	f = append(f, mask...)
	for i, c := range p {
		f = append(f, c^mask[i%4])
	}
	return f
}

// readFrame reads and discards one unmasked server frame.
func readFrame(c net.Conn) error {
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return fmt.Errorf("read frame: %w", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	_, err := io.CopyN(io.Discard, c, int64(n))
	return err
}
