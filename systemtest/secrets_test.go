package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/redistest"
)

// attackLocalRedis is a local process that is not Pulse: it finds the
// embedded Redis's port in the node's log and tries to read the aggregates,
// publish a fake delta and subscribe to the live ones without the password;
// every command must be refused. Then it walks the data dir, after events
// and an archive flush (the server needs a short --archive-max-age): every
// directory must be 0700 and every file 0600.
func attackLocalRedis(t *testing.T, ctx context.Context, s *server) string {
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf(`{"id":"lr-%d","site":"secrets","type":"pageview","url":"https://e.com/lr/%d"}`, i, i))
	}
	if code, res, err := s.post(ctx, []byte(strings.Join(lines, "\n")), "test"); err != nil || code != 202 || res.Accepted != len(lines) {
		t.Errorf("collect: %d %+v %v", code, res, err)
	}
	addr, err := embeddedRedisAddr(s)
	if err != nil {
		t.Errorf("embedded redis address: %v", err)
		return "local redis: no address found"
	}
	cmds := [][]string{
		{"KEYS", "*"}, {"SCAN", "0"}, {"GET", "x"}, {"HGETALL", "x"}, {"INFO"},
		{"PUBLISH", "p:{demo}:delta", `{"forged":true}`}, {"SUBSCRIBE", "p:{demo}:delta"}, {"PSUBSCRIBE", "*"},
		{"EVAL", "return redis.call('KEYS','*')", "0"}, {"FLUSHALL"},
		{"AUTH", "guessed-password-0123456789"}, {"AUTH", "default", ""},
	}
	refused := 0
	for _, cmd := range cmds {
		reply, err := redisOnce(ctx, addr, cmd...)
		switch {
		case err != nil:
			t.Errorf("redis %s: %v", cmd[0], err)
		case !strings.HasPrefix(reply, "-NOAUTH") && !strings.HasPrefix(reply, "-WRONGPASS") && !(cmd[0] == "AUTH" && strings.HasPrefix(reply, "-ERR")):
			t.Errorf("redis %s without the password answered %q, want an auth error", cmd[0], reply)
		default:
			refused++
		}
	}
	files, dirs := checkDataDirPrivate(t, ctx, s.data)
	return fmt.Sprintf("local redis at %s: %d of %d commands refused without the password (read, write, publish, subscribe, script); data dir: %d dirs 0700, %d files 0600",
		addr, refused, len(cmds), dirs, files)
}

// embeddedRedisAddr reads the embedded Redis's address from the node's
// JSON log (the last start's line).
func embeddedRedisAddr(s *server) (string, error) {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return "", err
	}
	addr := ""
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(line, &rec) == nil && strings.HasPrefix(rec.Msg, "embedded redis listening") {
			addr = rec.Addr
		}
	}
	if addr == "" {
		return "", errors.New(`no "embedded redis listening" line in the log`)
	}
	return addr, nil
}

// redisOnce sends one command on a fresh connection, as any local process
// could, and returns the first line of the reply.
func redisOnce(ctx context.Context, addr string, args ...string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// checkDataDirPrivate waits until the archive under dir holds a Parquet
// object, then checks every directory is 0700 and every file 0600, and
// returns how many of each it saw.
func checkDataDirPrivate(t *testing.T, ctx context.Context, dir string) (files, dirs int) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "archive", "*", "*", "*.parquet"))
		if len(m) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Errorf("no Parquet object under %s/archive: start the server with a short --archive-max-age", dir)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // a temp file renamed meanwhile
				return nil
			}
			return err
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want, dirs = 0o700, dirs+1
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s is %v, want %v", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", dir, err)
	}
	return files, dirs
}

// bombBytes is what attackDeflateBomb tries to send: 20 MiB of empty
// deflate blocks, which decompress to nothing.
const bombBytes = 20 << 20

// attackDeflateBomb streams a gzip body of empty stored deflate blocks,
// chunked, so that neither Content-Length nor the decompressed size stops
// it: the server must answer 413 after reading about MaxBodyBytes (1 MiB)
// of it and close the connection. The bytes the client managed to write
// are bounded by that plus the loopback socket buffers; good traffic is
// accepted after.
func attackDeflateBomb(t *testing.T, ctx context.Context, s *server) string {
	// A fixed, small send buffer, so that what the client "wrote" is what
	// the server's side took, not what the client's kernel queued.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 64<<10) })
		return errors.Join(err, serr)
	}}
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		t.Errorf("dial: %v", err)
		return "deflate bomb: no connection"
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	fmt.Fprintf(c, "POST /v1/collect HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", s.addr)
	status := make(chan string, 1)
	go func() { // reads the answer as soon as it comes, before a reset can drop it
		line, _ := bufio.NewReader(c).ReadString('\n')
		status <- strings.TrimSpace(line)
	}()
	chunk := emptyDeflateBlocks(64 << 10)
	written := 0
	for first := true; written < bombBytes; first = false {
		body := chunk
		if first {
			body = append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, chunk...)
		}
		n, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(body), body)
		written += n
		if err != nil {
			break
		}
	}
	got := <-status
	if !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("deflate bomb answered %q, want 413", got)
	}
	// What the client's writes got into: what the server read (the raw
	// limit, 1 MiB + 5 KiB), the client's send buffer (64 KiB, doubled by
	// the kernel) and the server's receive buffer, which Linux grows with
	// the rate the server read at (tcp_rmem): 1.8 to 3.6 MiB were seen.
	const limit = 1<<20 + 1<<20/1024 + 4<<10
	const buffers = 8 << 20
	if written > limit+buffers {
		t.Errorf("the client wrote %d bytes of the bomb before the server closed, want at most %d (raw limit) + %d (socket buffers)", written, limit, buffers)
	}
	code, res, err := s.post(ctx, []byte(`{"id":"after-bomb","site":"secrets","type":"pageview"}`), "test")
	if err != nil || code != 202 || res.Accepted != 1 {
		t.Errorf("good event after the bomb: %d %+v %v", code, res, err)
	}
	return fmt.Sprintf("deflate bomb: %q after the client wrote %.1f of %d MiB of empty deflate blocks (bound: raw limit %d B + %d MiB socket buffers); good traffic 202",
		got, float64(written)/(1<<20), bombBytes>>20, limit, buffers>>20)
}

// emptyDeflateBlocks returns about n bytes of empty, non-final stored
// deflate blocks (5 bytes each, no output).
func emptyDeflateBlocks(n int) []byte {
	return bytes.Repeat([]byte{0, 0, 0, 0xff, 0xff}, n/5)
}

// weakStart is a start of pulse serve with a weak or misplaced secret.
type weakStart struct {
	name   string
	args   []string // after serve --addr --data
	env    []string
	kept   string // DATA/read-token content, if any
	msg    string // in the output
	secret string // never in the output
}

// attackWeakSecrets starts pulse serve with each weak or misplaced
// secret: each start must fail, say what is wrong (the flag, or the file
// and line) and never show the secret. s is not used: each start is a
// process of its own.
func attackWeakSecrets(t *testing.T, ctx context.Context, s *server) string {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokens := []string{"--read-token", readToken, "--admin-token", adminToken}
	cases := []weakStart{
		{name: "1-byte --read-token", args: []string{"--read-token", "Q", "--admin-token", adminToken},
			msg: "--read-token (PULSE_READ_TOKEN): token must be 16 to 512 bytes", secret: "Q"},
		{name: "short PULSE_ADMIN_TOKEN", args: []string{"--read-token", readToken}, env: []string{"PULSE_ADMIN_TOKEN=adm1n-s3cr3t"},
			msg: "--admin-token (PULSE_ADMIN_TOKEN): token must be 16 to 512 bytes", secret: "adm1n-s3cr3t"},
		{name: "--read-token equal to an allowed site", args: []string{"--read-token", "the-shop-site-name", "--admin-token", adminToken, "--sites", "demo,the-shop-site-name"},
			msg: "--read-token: the token equals a site id of --sites", secret: "the-shop-site-name"},
		{name: "short kept token", args: []string{"--admin-token", adminToken}, kept: "k3pt-s3cr3t\n",
			msg: "read-token: token must be 16 to 512 bytes; delete the file", secret: "k3pt-s3cr3t"},
		{name: "1-byte token in the read-tokens file", args: append([]string{"--read-tokens", file("rt1", "# x\nZ=demo\n")}, tokens...),
			msg: filepath.Join(dir, "rt1") + ":2: token must be 16 to 512 bytes", secret: "Z="},
		{name: "swapped read-tokens line, secret not a site id", args: append([]string{"--read-tokens", file("rt2", "a-long-site-name-here=S3cr3t+T0ken/0123456789\n")}, tokens...),
			msg: filepath.Join(dir, "rt2") + ":1: site 1 of the list is not a site id", secret: "S3cr3t+T0ken"},
		{name: "swapped read-tokens line, token equal to a site", args: append([]string{"--read-tokens",
			file("rt3", "all-sites-token-0123456789=*\nthe-blog-site-name=s3cr3t-token-0123456789\nblog-reader-token-0123456789=the-blog-site-name\n")}, tokens...),
			msg: filepath.Join(dir, "rt3") + ":2: token equals a site id (named on " + filepath.Join(dir, "rt3") + ":3)", secret: "s3cr3t-token"},
		{name: "read token equal to an allowed site", args: append([]string{"--read-tokens", file("rt4", "the-shop-site-name=demo\n"), "--sites", "demo,the-shop-site-name"}, tokens...),
			msg: filepath.Join(dir, "rt4") + ":1: token equals a site id (one of the configured sites)", secret: "the-shop-site-name="},
		{name: "short write key", args: append([]string{"--write-keys", file("wk1", "shop=s3cr3t-k3y\n")}, tokens...),
			msg: filepath.Join(dir, "wk1") + ":1: key must be 16 to 512 bytes", secret: "s3cr3t-k3y"},
		{name: "swapped write-keys line", args: append([]string{"--write-keys", file("wk2", "S3cr3t+K3y/0123456789=shop https://shop.test\n")}, tokens...),
			msg: filepath.Join(dir, "wk2") + ":1: the text before = is not a site id", secret: "S3cr3t+K3y"},
		{name: "swapped write-keys line, key shaped like a site id", args: append([]string{"--write-keys", file("wk3", "s3cr3t-k3y-0123456789=shop\n")}, tokens...),
			msg: filepath.Join(dir, "wk3") + ":1: key must be 16 to 512 bytes", secret: "s3cr3t-k3y"},
	}
	refused := 0
	for _, tc := range cases {
		if weakStartRefused(t, ctx, tc) {
			refused++
		}
	}
	return fmt.Sprintf("weak secrets: %d of %d starts refused (secrets under 16 bytes, swapped lines, tokens equal to a site id), each naming the flag or file:line and never the secret",
		refused, len(cases))
}

// weakStartRefused runs tc and reports whether it failed as it must.
func weakStartRefused(t *testing.T, ctx context.Context, tc weakStart) bool {
	data := t.TempDir()
	if tc.kept != "" {
		if err := os.WriteFile(filepath.Join(data, "read-token"), []byte(tc.kept), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append([]string{"serve", "--addr", "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)), "--data", data}, tc.args...)
	cmd := exec.CommandContext(ctx, pulseBin, args...)
	cmd.Env = append(os.Environ(), tc.env...)
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		t.Errorf("%s: pulse serve exited 0: %s", tc.name, out)
	case ctx.Err() != nil:
		t.Errorf("%s: pulse serve started (did not exit): %s", tc.name, out)
	case !strings.Contains(string(out), tc.msg):
		t.Errorf("%s: output %s, want %q", tc.name, out, tc.msg)
	case strings.Contains(string(out), tc.secret):
		t.Errorf("%s: output shows the secret %q: %s", tc.name, tc.secret, out)
	default:
		return true
	}
	return false
}
