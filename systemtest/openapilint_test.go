package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// lintReport is the part of `redocly lint --format=json` the test reads.
type lintReport struct {
	Totals *struct {
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
		Ignored  int `json:"ignored"`
	} `json:"totals"`
	Problems []struct {
		RuleID   string `json:"ruleId"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Ignored  bool   `json:"ignored"`
		Location []struct {
			Pointer string `json:"pointer"`
			Start   struct {
				Line int `json:"line"`
				Col  int `json:"col"`
			} `json:"start"`
		} `json:"location"`
	} `json:"problems"`
}

// TestOpenAPILint lints docs/openapi.yaml with Redocly CLI under its
// recommended rules (redocly.yaml at the repository root; the locations
// ignored on purpose, each with its reason, are in
// .redocly.lint-ignore.yaml) and fails on any error or warning, listing
// each. TestOpenAPI checks the description against the server; this checks
// it as a reader's tools (documentation renderers, client generators) see
// it. It needs Redocly CLI: scripts/test.sh installs it and sets
// PULSE_REDOCLY to its executable.
func TestOpenAPILint(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: runs node")
	}
	redocly := os.Getenv("PULSE_REDOCLY")
	if redocly == "" {
		t.Fatal("PULSE_REDOCLY is not set: run scripts/test.sh, which installs Redocly CLI and sets it " +
			"(or npm install --prefix DIR @redocly/cli@2.77.0 and set PULSE_REDOCLY=DIR/node_modules/.bin/redocly)")
	}
	root := filepath.Dir(filepath.Dir(specPath(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, redocly, "lint", "--config", "redocly.yaml", "--format", "json", "docs/openapi.yaml")
	cmd.Dir = root
	// No usage report and no update check: the lint is local.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exits 1 when there are errors; the report says which
	var rep lintReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Totals == nil {
		t.Fatalf("redocly lint gave no JSON report (%v, run: %v)\nstdout: %.2000s\nstderr: %.2000s", err, runErr, stdout.Bytes(), stderr.Bytes())
	}
	for _, p := range rep.Problems {
		if p.Ignored {
			continue
		}
		where := "docs/openapi.yaml"
		if len(p.Location) > 0 {
			l := p.Location[0]
			where = fmt.Sprintf("%s:%d:%d %s", where, l.Start.Line, l.Start.Col, l.Pointer)
		}
		t.Errorf("%s %s %s: %s", where, p.Severity, p.RuleID, p.Message)
	}
	if rep.Totals.Errors+rep.Totals.Warnings > 0 {
		t.Errorf("redocly lint: %d errors, %d warnings (want none)", rep.Totals.Errors, rep.Totals.Warnings)
	}
	if runErr != nil && !t.Failed() {
		t.Errorf("redocly lint failed without reporting a problem: %v\nstderr: %.2000s", runErr, stderr.Bytes())
	}
	t.Logf("redocly lint: %d errors, %d warnings, %d ignored on purpose", rep.Totals.Errors, rep.Totals.Warnings, rep.Totals.Ignored)
}
