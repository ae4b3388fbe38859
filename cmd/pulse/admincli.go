package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/control"
	"github.com/pulsehq/pulse/namespace"
)

// adminFlags are the flags of every admin command: which server, and the
// admin token (given, or read from the server's data dir on the same host).
func adminFlags() []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "server", Value: "http://127.0.0.1:8080", Usage: "base URL of a pulse serve"},
		&cli.StringFlag{Name: "admin-token", Usage: "admin token (default: the one kept in --data)"},
		&cli.StringFlag{Name: "data", Value: "./data", Usage: "data dir of the server, to read its admin token from"},
	}
	for _, f := range fs {
		f.(*cli.StringFlag).Sources = env(f.(*cli.StringFlag).Name)
	}
	return fs
}

// adminClient calls the admin routes of one server.
type adminClient struct {
	base, token string
	hc          *http.Client
}

func newAdminClient(c *cli.Command) (*adminClient, error) {
	tok := c.String("admin-token")
	if tok == "" {
		b, err := os.ReadFile(strings.TrimRight(c.String("data"), "/") + "/admin-token")
		if err != nil {
			return nil, fmt.Errorf("no --admin-token (or PULSE_ADMIN_TOKEN) given and none readable in --data: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	return &adminClient{base: strings.TrimRight(c.String("server"), "/"), token: tok, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request and decodes a 2xx JSON answer into out; other
// statuses become an error carrying the server's message.
func (a *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func namespacesCommand() *cli.Command {
	return &cli.Command{
		Name:  "namespaces",
		Usage: "list the aggregate namespaces (state, created, metrics, range) and the current one",
		Flags: adminFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var d namespace.Doc
			if err := a.do(ctx, http.MethodGet, "/v1/admin/namespaces", nil, &d); err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATE\tCREATED\tRANGE\tMETRICS")
			for _, i := range d.Namespaces {
				rng := "everything"
				if i.From != 0 || i.To != 0 {
					rng = fmtMillis(i.From) + " .. " + fmtMillis(i.To)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", i.Name, i.State, i.Created.Format(time.RFC3339), rng, strings.Join(i.Metrics, ","))
			}
			return w.Flush()
		},
	}
}

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "make a ready namespace current: queries, pushes and the live aggregator switch to it at once",
		ArgsUsage: "NAMESPACE",
		Flags:     adminFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			name := c.Args().First()
			if name == "" || c.Args().Len() != 1 {
				return errors.New("promote: want one NAMESPACE")
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var out struct{ Current, Previous string }
			if err := a.do(ctx, http.MethodPost, "/v1/admin/namespaces/"+url.PathEscape(name)+"/promote", nil, &out); err != nil {
				return err
			}
			fmt.Printf("current namespace: %s (was %s)\n", out.Current, out.Previous)
			return nil
		},
	}
}

func dropCommand() *cli.Command {
	return &cli.Command{
		Name:      "drop",
		Usage:     "delete a namespace that is not current, with all its keys",
		ArgsUsage: "NAMESPACE",
		Flags:     adminFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			name := c.Args().First()
			if name == "" || c.Args().Len() != 1 {
				return errors.New("drop: want one NAMESPACE")
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var out struct {
				Dropped string
				Keys    int64
			}
			if err := a.do(ctx, http.MethodDelete, "/v1/admin/namespaces/"+url.PathEscape(name), nil, &out); err != nil {
				return err
			}
			fmt.Printf("dropped namespace %s (%d keys)\n", out.Dropped, out.Keys)
			return nil
		},
	}
}

func replayCommand() *cli.Command {
	flags := append(adminFlags(),
		&cli.StringFlag{Name: "namespace", Usage: "namespace to build (new, or one still building: the replay resumes, with the range and config it was started with when none is given)", Required: true},
		&cli.StringFlag{Name: "from", Usage: "first event time: RFC 3339, unix ms or relative (-24h); default: everything archived or retained"},
		&cli.StringFlag{Name: "to", Usage: "end of the event times (exclusive); default: none (a namespace with an end cannot be promoted)"},
		&cli.StringFlag{Name: "metrics-config", Usage: "YAML file of metric definitions for the namespace (default: the built-ins)"},
		&cli.BoolFlag{Name: "promote", Usage: "promote the namespace once it is ready"},
	)
	return &cli.Command{
		Name:  "replay",
		Usage: "rebuild aggregates from the archive and the stream into a new namespace, in the server (admin job)",
		Flags: flags,
		Action: func(ctx context.Context, c *cli.Command) error {
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			req := control.ReplayRequest{Namespace: c.String("namespace")}
			// No --to: no upper bound, so the namespace has every event
			// after --from and can be promoted (the live aggregator goes
			// on from where the replay ended). With --to it is a window,
			// for inspection, that cannot be promoted.
			now := time.Now()
			if c.String("from") != "" {
				if req.From, err = parseTime(c.String("from"), now); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			if c.String("to") != "" {
				if req.From, req.To, err = parseRange(c.String("from"), c.String("to"), now); err != nil {
					return err
				}
			}
			if p := c.String("metrics-config"); p != "" {
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("--metrics-config: %w", err)
				}
				req.MetricsConfig = string(b)
			}
			var st control.JobStatus
			if err := a.do(ctx, http.MethodPost, "/v1/admin/replay", req, &st); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "replay job %s into namespace %s\n", st.ID, st.Namespace)
			if st, err = a.wait(ctx, st.ID); err != nil {
				return err
			}
			fmt.Printf("namespace %s ready: %d events replayed\n", st.Namespace, st.Progress.Events)
			if c.Bool("promote") {
				var out struct{ Current, Previous string }
				if err := a.do(ctx, http.MethodPost, "/v1/admin/namespaces/"+url.PathEscape(st.Namespace)+"/promote", nil, &out); err != nil {
					return err
				}
				fmt.Printf("current namespace: %s (was %s)\n", out.Current, out.Previous)
			}
			return nil
		},
	}
}

func verifyCommand() *cli.Command {
	flags := append(adminFlags(),
		&cli.StringFlag{Name: "from", Usage: "window start: RFC 3339, unix ms or relative (-2h)", Required: true},
		&cli.StringFlag{Name: "to", Usage: "window end (exclusive); default now"},
		&cli.IntFlag{Name: "max-rows", Value: 50, Usage: "most drift rows printed"},
	)
	return &cli.Command{
		Name:  "verify",
		Usage: "recompute a window from the archive with the live code and report every bucket that differs from the live aggregates (exit status 1 on drift)",
		Flags: flags,
		Action: func(ctx context.Context, c *cli.Command) error {
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			from, to, err := parseRange(c.String("from"), c.String("to"), time.Now())
			if err != nil {
				return err
			}
			var st control.JobStatus
			if err := a.do(ctx, http.MethodPost, "/v1/admin/verify", control.VerifyRequest{From: from, To: to}, &st); err != nil {
				return err
			}
			if st, err = a.wait(ctx, st.ID); err != nil {
				return err
			}
			return printVerify(os.Stdout, st.Verify, int(c.Int("max-rows")))
		},
	}
}

// errDrift is returned (exit status 1) when verify found differences.
var errDrift = errors.New("verify: live aggregates differ from the recomputation")

func printVerify(out io.Writer, v *control.VerifyResult, maxRows int) error {
	if v == nil {
		return errors.New("verify: no result")
	}
	fmt.Fprintf(out, "verify %s .. %s against namespace %s: %d buckets, %d counters compared (steps %s), %d differ",
		fmtMillis(v.From), fmtMillis(v.To), v.Live, v.Buckets, v.Counters, strings.Join(v.Steps, ","), len(v.Drift))
	if !v.Stable {
		fmt.Fprintf(out, " (live aggregates kept moving over %d rounds: differences may be events in flight)", v.Rounds)
	}
	fmt.Fprintln(out)
	if len(v.Drift) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SITE\tMETRIC\tSTEP\tBUCKET\tDIMENSION\tLIVE\tRECOMPUTED\tDIFF\t")
	for i, d := range v.Drift {
		if i == maxRows {
			fmt.Fprintf(w, "... %d more\t\t\t\t\t\t\t\t\n", len(v.Drift)-maxRows)
			break
		}
		dim := "(total)"
		if d.Dim != "" {
			dim = d.Dim + "=" + d.Value
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%+d\t\n", d.Site, d.Metric, d.Step, fmtMillis(d.Bucket), dim, d.Live, d.Recomputed, d.Live-d.Recomputed)
	}
	w.Flush()
	return errDrift
}

// wait polls a job until it ends, drawing a progress bar on a terminal
// and a plain line every 5 seconds otherwise.
func (a *adminClient) wait(ctx context.Context, id string) (control.JobStatus, error) {
	tty := false
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	var bar *progressbar.ProgressBar
	if tty {
		bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(id),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	lastLine := time.Time{}
	for {
		var st control.JobStatus
		if err := a.do(ctx, http.MethodGet, "/v1/admin/jobs/"+url.PathEscape(id), nil, &st); err != nil {
			if bar != nil {
				_ = bar.Exit()
			}
			// Jobs live in the server's memory: a restart loses the job,
			// not its work.
			return st, fmt.Errorf("watch job %s: %w (if the server restarted, run the same command again: a replay resumes where it got to, a verify starts over)", id, err)
		}
		p := st.Progress
		if bar != nil {
			if p.Estimate > 0 && bar.GetMax64() != p.Estimate {
				bar.ChangeMax64(max(p.Estimate, p.Events))
			}
			_ = bar.Set64(p.Events)
			bar.Describe(fmt.Sprintf("%s [%s]", st.Namespace, p.Phase))
		} else if time.Since(lastLine) >= 5*time.Second || st.State != "running" {
			lastLine = time.Now()
			eta := "?"
			if p.ETASeconds > 0 {
				eta = (time.Duration(p.ETASeconds) * time.Second).String()
			}
			fmt.Fprintf(os.Stderr, "%s %s: %s phase, %d events (~%d), %.0f events/s, ETA %s\n",
				time.Now().UTC().Format(time.TimeOnly), st.ID, p.Phase, p.Events, p.Estimate, p.EventsPerSec, eta)
		}
		switch st.State {
		case "done":
			if bar != nil {
				_ = bar.Finish()
			}
			return st, nil
		case "failed":
			if bar != nil {
				_ = bar.Exit()
			}
			return st, fmt.Errorf("job %s failed: %s", st.ID, st.Error)
		}
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, fmt.Errorf("stopped waiting (the job goes on in the server; run the command again to resume watching): %w", ctx.Err())
		case <-t.C:
		}
	}
}

// parseRange reads a [from, to) range of times; to defaults to now.
func parseRange(from, to string, now time.Time) (int64, int64, error) {
	f, err := parseTime(from, now)
	if err != nil {
		return 0, 0, fmt.Errorf("--from: %w", err)
	}
	t := now.UnixMilli()
	if to != "" {
		if t, err = parseTime(to, now); err != nil {
			return 0, 0, fmt.Errorf("--to: %w", err)
		}
	}
	if f >= t {
		return 0, 0, fmt.Errorf("--from %s is not before --to %s", fmtMillis(f), fmtMillis(t))
	}
	return f, t, nil
}

// parseTime reads "now", a relative time (-15m, -2h, -7d), unix ms or RFC
// 3339.
func parseTime(s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now.UnixMilli(), nil
	case strings.HasPrefix(s, "-"):
		d, err := parseDurationDays(s[1:])
		if err != nil {
			return 0, err
		}
		return now.Add(-d).UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not now, -DURATION, unix ms or RFC 3339", s)
	}
	return t.UnixMilli(), nil
}

func parseDurationDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

func fmtMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05Z")
}
