package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/pulsehq/pulse/sites"
)

// sitesCommand is the twin of the /v1/admin/sites routes: list the
// accepted sites, add one at run time.
func sitesCommand() *cli.Command {
	return &cli.Command{
		Name:  "sites",
		Usage: "list the sites the server accepts (pulse sites), or add one at run time (pulse sites add SITE)",
		Flags: adminFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			var l sites.ListAnswer
			if err := a.do(ctx, http.MethodGet, "/v1/admin/sites", nil, &l); err != nil {
				return err
			}
			if l.Open {
				fmt.Printf("any site (--sites '*'), up to %d admitted from traffic\n", l.Max)
			}
			fmt.Printf("static (--sites): %s\n", strings.Join(l.Static, ","))
			fmt.Printf("added at run time (%d): %s\n", len(l.Shared), strings.Join(l.Shared, ","))
			return nil
		},
		Commands: []*cli.Command{{
			Name:      "add",
			Usage:     "accept events of SITE on every node of the deployment from now on (kept in Redis, and with the embedded Redis in DATA/sites)",
			ArgsUsage: "SITE",
			Flags:     adminFlags(),
			Action: func(ctx context.Context, c *cli.Command) error {
				site := c.Args().First()
				if site == "" || c.Args().Len() != 1 {
					return errors.New("sites add: want one SITE")
				}
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				var out sites.AddAnswer
				if err := a.do(ctx, http.MethodPost, "/v1/admin/sites", sites.AddRequest{Site: site}, &out); err != nil {
					return err
				}
				if out.Added {
					fmt.Printf("site %s added\n", out.Site)
				} else {
					fmt.Printf("site %s was already added\n", out.Site)
				}
				return nil
			},
		}},
	}
}
