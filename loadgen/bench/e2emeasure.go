package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// pipelineCounters are the counters of a pulse serve's /metrics that say
// where its events are (docs/operations.md, "Metrics to alert on").
type pipelineCounters struct {
	Accepted int64 // pulse_ingest_events_total{result="accepted"}: durable in the stream
	Read     int64 // pulse_aggregator_events_total, every outcome: records the aggregator is done with
	Applied  int64 // outcomes applied and future_clamped: events counted in the aggregates
}

// lag is what the stream holds that the aggregator has not applied yet.
func (c pipelineCounters) lag() int64 { return c.Accepted - c.Read }

// minus returns the counts of c since b.
func (c pipelineCounters) minus(b pipelineCounters) pipelineCounters {
	return pipelineCounters{Accepted: c.Accepted - b.Accepted, Read: c.Read - b.Read, Applied: c.Applied - b.Applied}
}

// parseCounters reads the pipeline counters of a Prometheus text page.
func parseCounters(r io.Reader) (pipelineCounters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return pipelineCounters{}, fmt.Errorf("parse metrics: %w", err)
	}
	var c pipelineCounters
	for _, m := range fams["pulse_ingest_events_total"].GetMetric() {
		if labelOf(m, "result") == "accepted" {
			c.Accepted = int64(m.GetCounter().GetValue())
		}
	}
	for _, m := range fams["pulse_aggregator_events_total"].GetMetric() {
		n := int64(m.GetCounter().GetValue())
		c.Read += n
		if o := labelOf(m, "outcome"); o == "applied" || o == "future_clamped" {
			c.Applied += n
		}
	}
	return c, nil
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// scrapeCounters reads the pipeline counters from url (a /metrics).
func scrapeCounters(ctx context.Context, url string) (pipelineCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return pipelineCounters{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return pipelineCounters{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return pipelineCounters{}, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	return parseCounters(resp.Body)
}

// e2eSample is one reading of the sampler.
type e2eSample struct {
	At time.Time
	C  pipelineCounters
}

// sampler reads a pulse serve's counters every period until
// finish; finish returns what it read.
type sampler struct {
	stop chan struct{}
	done chan []e2eSample
}

func startSampler(ctx context.Context, metricsURL string, period time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan []e2eSample, 1)}
	go func() {
		var out []e2eSample
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.done <- out
				return
			case <-t.C:
			}
			// A failed scrape leaves a gap; the marks the figures come
			// from are read separately and fail the run.
			if c, err := scrapeCounters(ctx, metricsURL); err == nil {
				out = append(out, e2eSample{At: time.Now(), C: c})
			}
		}
	}()
	return s
}

func (s *sampler) finish() []e2eSample {
	close(s.stop)
	return <-s.done
}

// e2eMark is the state of a run at one instant: the pipeline counters and
// the CPU time of each process so far.
type e2eMark struct {
	At       time.Time
	C        pipelineCounters
	PulseCPU time.Duration
	RedisCPU time.Duration // redis-server's, 0 in embedded mode
}

// vmHWMKiB reads the peak resident set size of pid (VmHWM), 0 when it
// cannot be read.
func vmHWMKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseStatusKiB(b, "VmHWM:")
}
