package systemtest

import (
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pulsehq/pulse/internal/kinesistest"
)

// kinesisAndS3Env points this process and every pulse it starts at a
// Kinesis emulator (kinesis-local) and an S3 emulator (gofakes3, in this
// process) through the SDK's standard variables, as a deployment would. It
// creates bucket and returns a client of the Kinesis emulator.
func kinesisAndS3Env(t *testing.T, bucket string) *kinesis.Client {
	t.Helper()
	endpoint := kinesistest.Start(t)
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3srv.Close)
	awsEnv(t, endpoint)
	t.Setenv("AWS_ENDPOINT_URL_S3", s3srv.URL)
	// No profile or shared files of the machine may change what the
	// processes use.
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	return kinesisClient(endpoint)
}
