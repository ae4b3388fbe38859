package kinesis

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
)

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
