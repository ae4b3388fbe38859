// Package kinesistest runs the Kinesis emulator (kinesis-local from npm,
// through scripts/kinesis-local.sh) for tests, on a free port, stopped when
// the test ends.
package kinesistest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pulsehq/pulse/internal/redistest"
)

// Start runs kinesis-local on a free port until the test ends and returns
// its endpoint URL (plain HTTP). Its log goes to a file in the test's temp
// dir, named when it fails to start. Under -short the test is skipped: the
// emulator is a node process that takes seconds to start.
func Start(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("skipped in -short: starts the Kinesis emulator (kinesis-local)")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kinesis-local.sh")
	dir := os.Getenv("KINESIS_LOCAL_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "pulse", "kinesis-local")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kinesis-local", "main.js")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			tb.Fatalf("the Kinesis emulator is not installed and npm is missing: run scripts/test.sh (or install Node.js and run scripts/kinesis-local.sh install)")
		}
	}
	port := redistest.FreePort(tb)
	cmd := exec.Command("bash", script, "start", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(tb.TempDir(), "kinesis-local.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", script, err)
	}
	tb.Cleanup(func() {
		// The script and node share the process group; nothing needs a
		// graceful stop, and node's takes seconds.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("%s exited before the emulator was ready (log %s)", script, logf.Name())
	}()
	select {
	case err := <-ready:
		if err != nil {
			tb.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		tb.Fatalf("kinesis-local not ready after 3 minutes (log %s)", logf.Name())
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// CreateStream makes a stream of n shards on the emulator behind c, named
// after the test, and waits until it is active.
func CreateStream(tb testing.TB, c *kinesis.Client, n int) string {
	tb.Helper()
	name := fmt.Sprintf("pulse-%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(tb.Name())), time.Now().UnixNano())
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		tb.Fatalf("create stream %s: %v", name, err)
	}
	WaitActive(tb, c, name)
	return name
}

// WaitActive waits up to a minute for stream name to be ACTIVE (after a
// create or a reshard).
func WaitActive(tb testing.TB, c *kinesis.Client, name string) {
	tb.Helper()
	for i := 0; ; i++ {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		if i == 600 {
			tb.Fatalf("stream %s not active: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
