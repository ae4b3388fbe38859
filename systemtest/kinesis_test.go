package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
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
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pulsehq/pulse/internal/redistest"
)

// awsEnv points this process and every pulse it starts at a Kinesis
// emulator (kinesis-local, scripts/kinesis-local.sh) and an S3 emulator
// (gofakes3, in this process), through the SDK's standard variables, as a
// deployment would. It returns the Kinesis client and creates bucket.
func awsEnv(t *testing.T, bucket string) *kinesis.Client {
	t.Helper()
	endpoint := startKinesisLocal(t)
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3srv.Close)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KINESIS":    endpoint,
		"AWS_ENDPOINT_URL_S3":         s3srv.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDPULSESYSTEM",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return kinesis.NewFromConfig(cfg)
}

// startKinesisLocal runs scripts/kinesis-local.sh on a free port until the
// test ends and returns its endpoint URL.
func startKinesisLocal(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "kinesis-local.sh")
	port := redistest.FreePort(t)
	cmd := exec.Command("bash", script, "start", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(t.TempDir(), "kinesis-local.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	t.Cleanup(func() {
		// The script and node share a process group: stop both.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("kinesis-local exited before it was ready (install it with scripts/kinesis-local.sh install):\n%s", b)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("kinesis-local not ready after 2 minutes")
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// createKinesisStream makes a fresh stream of n shards and waits until it
// is active.
func createKinesisStream(t *testing.T, c *kinesis.Client, n int) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("pulse-%d", time.Now().UnixNano())
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	for i := 0; ; i++ {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return name
		}
		if i == 300 {
			t.Fatalf("stream %s not active: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
