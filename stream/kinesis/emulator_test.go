package kinesis

import (
	"bufio"
	"context"
	"fmt"
	"net"
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
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
)

// startEmulator runs kinesis-local (scripts/kinesis-local.sh) on a free
// port for the test and stops it at cleanup. It returns the endpoint URL.
func startEmulator(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kinesis-local.sh")
	home, _ := os.UserHomeDir()
	dir := os.Getenv("KINESIS_LOCAL_DIR")
	if dir == "" {
		dir = filepath.Join(home, ".cache", "pulse", "kinesis-local")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kinesis-local", "main.js")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			t.Fatalf("the Kinesis emulator is not installed and npm is missing: run scripts/test.sh (or install Node.js and run scripts/kinesis-local.sh install)")
		}
	}
	port := freePort(t)
	cmd := exec.Command("bash", script, "start", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	t.Cleanup(func() {
		// The script and node share the process group; nothing needs a
		// graceful stop, and node's takes seconds.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
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
		ready <- fmt.Errorf("%s exited before the emulator was ready", script)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("kinesis-local not ready after 3 minutes")
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newClient builds a client as cmd/pulse does, from the SDK's default
// configuration with AWS_ENDPOINT_URL_KINESIS pointing at endpoint.
// apiOptions inject test middleware.
func newClient(tb testing.TB, endpoint string, apiOptions ...func(*middleware.Stack) error) *kinesis.Client {
	tb.Helper()
	tb.Setenv("AWS_ENDPOINT_URL_KINESIS", endpoint)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDPULSETEST", SecretAccessKey: "secret"}, nil
		})),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, apiOptions...)
	})
}

// createStream makes a fresh stream with n shards and waits for it to be
// active.
func createStream(t *testing.T, c *kinesis.Client, n int) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("pulse-%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name())), time.Now().UnixNano())
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	waitActive(t, c, name)
	return name
}

func waitActive(t *testing.T, c *kinesis.Client, name string) {
	t.Helper()
	for i := 0; ; i++ {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		if i == 300 {
			t.Fatalf("stream %s not active: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
