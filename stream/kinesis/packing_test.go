package kinesis

import (
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestPacking offers events at fixed rates in a synctest bubble, so the
// offered load is exact whatever the CPU, to an in-process endpoint that
// accepts PutRecords at once, and checks that aggregation packs as the
// linger allows. It logs the figures docs/benchmarks.md reports.
func TestPacking(t *testing.T) {
	tests := []struct {
		rate      int
		noAggr    bool
		minPerRec float64 // events per Kinesis record at least
	}{
		{rate: 1_000, minPerRec: 1.1},
		{rate: 10_000, minPerRec: 8},
		{rate: 50_000, minPerRec: 40},
		{rate: 10_000, noAggr: true, minPerRec: 1},
	}
	for _, tt := range tests {
		name := map[bool]string{false: "aggregated", true: "plain"}[tt.noAggr]
		t.Run(fmt.Sprintf("%s/rate=%d", name, tt.rate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &packingServer{shards: 4}
				client := kinesis.New(kinesis.Options{
					Region:       "us-east-1",
					BaseEndpoint: aws.String("http://kinesis.test"),
					Credentials:  aws.AnonymousCredentials{},
					HTTPClient:   handlerClient{srv},
				})
				n := tt.rate / 4 // a quarter of a second of load
				packing(t, srv, client, n, tt.rate, tt.noAggr)
				perRecord := float64(n) / float64(srv.records.Load())
				perCall := float64(n) / float64(srv.calls.Load())
				units := float64(srv.units.Load()) * 1e6 / float64(n)
				t.Logf("%6d events/s %-10s: %6.1f events/record, %6.1f events/call, %8.0f units/Mevents", tt.rate, name, perRecord, perCall, units)
				if perRecord < tt.minPerRec {
					t.Errorf("%.1f events per record, want at least %.1f", perRecord, tt.minPerRec)
				}
				if tt.noAggr && perRecord != 1 {
					t.Errorf("without aggregation: %.2f events per record", perRecord)
				}
			})
		})
	}
}
