// Command ward is Ward's single binary: serve the API, or administer the
// database (create projects, rotate signing keys and the secrets key).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `usage: ward <command> [flags]

commands:
  serve                     run the server (SQLite in ./ward-data by default)
  admin create-project      create a project with a full-access admin client
  admin rotate-keys         add a token signing key, published at once, signing after
                            --publish-for (6m); the old ones retire then
  admin rotate-secrets-key  seal every key and secret again with a new secrets key
                            (from WARD_NEW_SECRETS_KEY, or a new key file)
  version                   print the version

Run "ward <command> -h" for the flags of a command.
`

func main() {
	// A zambda sandbox starts this binary as its first program.
	sandbox.Init()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once, without the grace period
	}()
	err := run(ctx, os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the flags are printed, and asking for them is no failure
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ward:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:])
	case "admin":
		return admin(ctx, args[1:])
	case "version", "--version", "-v":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
