package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/tokens"
)

func admin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("admin needs a subcommand: create-project, rotate-keys or rotate-secrets-key")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	switch args[0] {
	case "create-project":
		name := "New project"
		fs := flag.NewFlagSet("create-project", flag.ContinueOnError)
		fs.StringVar(&name, "name", name, "project name")
		rest, err := splitFlags(fs, args[1:])
		if err != nil {
			return err
		}
		c, err := parseConfig("admin create-project", rest)
		if err != nil {
			return err
		}
		svc, err := open(ctx, c, log, false)
		if err != nil {
			return err
		}
		defer svc.store.Close()
		creds, err := svc.iam.CreateProject(ctx, name)
		if err != nil {
			return err
		}
		out := credentialsFile{AdminCredentials: creds, TokenURL: c.PublicURL + "/oauth/token",
			ProjectAPIURL: c.PublicURL + "/v1", FHIRAPIURL: c.fhirURL()}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "rotate-keys":
		lead := tokens.PublishLead
		fs := flag.NewFlagSet("rotate-keys", flag.ContinueOnError)
		fs.DurationVar(&lead, "publish-for", lead, "how long the new key is published before it signs (at least the JWKS cache lifetime, 5 minutes)")
		rest, err := splitFlags(fs, args[1:])
		if err != nil {
			return err
		}
		c, err := parseConfig("admin rotate-keys", rest)
		if err != nil {
			return err
		}
		if lead < tokens.PublishLead {
			log.Warn("the new key signs before outside verifiers' cached JWKS may list it: their checks can fail until it does",
				"publish_for", lead, "recommended", tokens.PublishLead)
		}
		svc, err := open(ctx, c, log, false)
		if err != nil {
			return err
		}
		defer svc.store.Close()
		kid, activates, err := tokens.Rotate(ctx, svc.store, svc.sealer, time.Now, lead)
		if err != nil {
			return err
		}
		fmt.Printf("new signing key %s, published now, signing from %s; older keys verify tokens for %s more after that, then drop out\n",
			kid, activates.UTC().Format(time.RFC3339), tokens.Grace)
		return nil
	case "rotate-secrets-key":
		c, err := parseConfig("admin rotate-secrets-key", args[1:])
		if err != nil {
			return err
		}
		return rotateSecretsKey(ctx, c, c.NewSecretsKey, os.Stdout, log)
	}
	return fmt.Errorf("unknown admin subcommand %q", args[0])
}

// splitFlags parses the flags fs knows (as -f v, --f v or --f=v) and
// returns the rest, so a subcommand can add flags to the shared ones.
func splitFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		f := fs.Lookup(name)
		if f == nil || !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag %s needs a value", args[i])
			}
			i++
			value = args[i]
		}
		if err := fs.Set(f.Name, value); err != nil {
			return nil, err
		}
	}
	return rest, nil
}
