package kinesis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pulsehq/pulse/internal/kinesistest"
)

// startEmulator runs kinesis-local on a free port for the test and
// returns its endpoint URL.
func startEmulator(t *testing.T) string {
	t.Helper()
	return kinesistest.Start(t)
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
