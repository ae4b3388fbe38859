// Command pulse runs the Pulse real-time analytics backend: `pulse serve`
// runs any set of roles (ingest, aggregate, push, archive) in one process;
// the other subcommands are tools around it.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v3"
)

func main() {
	if err := newApp().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "pulse:", err)
		os.Exit(1)
	}
}

func newApp() *cli.Command {
	return &cli.Command{
		Name:  "pulse",
		Usage: "real-time analytics: beacon -> stream -> exactly-once Redis aggregates -> live dashboards",
		Commands: []*cli.Command{
			serveCommand(),
			benchCommand(),
			healthCommand(),
			replayCommand(),
			promoteCommand(),
			namespacesCommand(),
			dropCommand(),
			verifyCommand(),
			sitesCommand(),
		},
	}
}

// env names the environment variable of a flag: every flag is also
// PULSE_<FLAG>, dashes as underscores.
func env(flag string) cli.ValueSourceChain {
	return cli.EnvVars("PULSE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_")))
}
