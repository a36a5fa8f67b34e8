package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/server"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Exit codes of the probe command. Scripts branch on them: a 2 means the
// command was refused before any traffic, so running it again will not help.
const (
	exitProbeSucceeded = 0
	exitProbeFailed    = 1
	exitBadInput       = 2
)

// probeJob is a probe command that passed every check that needs no
// network: what to probe, and with which module's prober.
type probeJob struct {
	target probe.Target
	// mailbox is the configured mailbox probed, nil for --address.
	mailbox *config.Mailbox
	module  string
	prober  *probe.Prober
}

// probeOnce is the ExRCA experience in a terminal. It ignores the
// credential back-off: it is a person's explicit act. Everything that can
// be refused is refused before the first packet.
func probeOnce(o options, stdout, stderr io.Writer) int {
	if err := checkProbeFlags(o); err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return exitBadInput
	}
	cur, ok := loadOnce(o, stderr)
	if !ok {
		return exitBadInput
	}
	job, err := planProbe(o, cur)
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return exitBadInput
	}

	ctx, cancel := context.WithTimeout(context.Background(), job.prober.Timeout())
	defer cancel()
	signalCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := job.prober.Run(signalCtx, job.target)
	if err != nil {
		// planProbe normalised the address already; a refusal here would
		// still be about the input.
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return exitBadInput
	}
	if err := writeProbeResult(stdout, o.probeOutput, res, time.Now()); err != nil {
		fmt.Fprintf(stderr, "probe: writing the result: %v\n", err)
		return exitProbeFailed
	}
	if !res.Success {
		return exitProbeFailed
	}
	if o.exporterURL != "" {
		if err := server.ResetBackoff(ctx, o.exporterURL, job.mailbox.Name); err != nil {
			fmt.Fprintf(stderr, "the probe succeeded, but resetting the exporter's back-off failed: %v\n", err)
			return exitProbeFailed
		}
		// Not on stdout in JSON mode: a script parses stdout as one document.
		note := stdout
		if o.probeOutput == "json" {
			note = stderr
		}
		fmt.Fprintf(note, "Credential back-off of %s reset on %s.\n", job.mailbox.Name, o.exporterURL)
	}
	return exitProbeSucceeded
}

// checkProbeFlags refuses combinations of arguments that cannot mean
// anything, before the configuration is read.
func checkProbeFlags(o options) error {
	switch {
	case o.probeTarget != "" && o.probeAddress != "":
		return fmt.Errorf("give either a mailbox name (%q) or --address (%q), not both", o.probeTarget, o.probeAddress)
	case o.probeTarget == "" && o.probeAddress == "":
		return errors.New("give the name of a configured mailbox, or --address user@domain")
	case o.probeAddress != "" && o.exporterURL != "":
		return errors.New("--exporter.url resets the back-off of a configured mailbox: give its name instead of --address")
	}
	if o.probeAddress != "" {
		if _, _, err := probe.NormalizeAddress(o.probeAddress); err != nil {
			return err
		}
	}
	return nil
}

// planProbe picks the target and the module, and applies the rule the
// server applies to a module= override: a module's credentials go only to
// the domains its operator paired with it.
func planProbe(o options, cur *server.Loaded) (probeJob, error) {
	cfg := cur.Config
	var job probeJob
	var domain string
	if o.probeAddress != "" {
		address, d, err := probe.NormalizeAddress(o.probeAddress)
		if err != nil {
			return job, err
		}
		// An ad-hoc address has no expectations: those describe a
		// configured mailbox.
		job.target, domain = probe.Target{Address: address}, d
		module, err := adHocModule(cfg, o.probeModule)
		if err != nil {
			return job, err
		}
		job.module = module
	} else {
		mb, ok := cfg.Mailbox(o.probeTarget)
		if !ok {
			return job, fmt.Errorf("%q is not a configured mailbox in %s (to probe an address that is not configured, use --address)", o.probeTarget, o.configFile)
		}
		job.mailbox, job.target, domain, job.module = mb, server.Target(mb), mb.Domain(), mb.Module
		if o.probeModule != "" {
			job.module = o.probeModule
		}
	}
	mod, ok := cfg.Module(job.module)
	if !ok {
		return job, fmt.Errorf("unknown module %q: %s has %s", job.module, o.configFile, moduleList(cfg))
	}
	if err := credentialsPaired(cfg, job.module, mod, domain); err != nil {
		return job, err
	}
	job.prober, _ = cur.Prober(job.module)
	return job, nil
}

// adHocModule is the module an --address probe uses: the one named, or
// the only one there is. With several, guessing would pick whose
// credentials to send, so the person has to say.
func adHocModule(cfg *config.Config, named string) (string, error) {
	if named != "" {
		return named, nil
	}
	if len(cfg.Modules) == 1 {
		for name := range cfg.Modules {
			return name, nil
		}
	}
	return "", fmt.Errorf("--address needs --module: the configuration has %s", moduleList(cfg))
}

// credentialsPaired says whether the module may probe an address of
// domain: it has no credentials, or the domain is (under) one of its
// mailboxes' domains or its allowed_domains. The probe package would send
// the credentials to any host of the address's own domain, so an address
// of an unpaired domain would hand them to whoever runs that domain.
func credentialsPaired(cfg *config.Config, name string, mod *config.Module, domain string) error {
	if mod.Auth.Type == "" || mod.Auth.Type == probe.AuthNone {
		return nil
	}
	paired := slices.Clone(mod.AllowedDomains)
	for _, mb := range cfg.Mailboxes {
		if mb.Module == name {
			paired = append(paired, mb.Domain())
		}
	}
	for _, d := range paired {
		if d = strings.ToLower(d); domain == d || strings.HasSuffix(domain, "."+d) {
			return nil
		}
	}
	slices.Sort(paired)
	return fmt.Errorf("module %q holds credentials paired with %s, not with %s: add the domain to its allowed_domains to probe this address with it", name, orNone(strings.Join(slices.Compact(paired), ", ")), domain)
}

// moduleList names the configured modules for an error message.
func moduleList(cfg *config.Config) string {
	names := make([]string, 0, len(cfg.Modules))
	for name := range cfg.Modules {
		names = append(names, name)
	}
	slices.Sort(names)
	switch len(names) {
	case 0:
		return "no modules"
	case 1:
		return "one module: " + names[0]
	}
	return fmt.Sprintf("%d modules: %s", len(names), strings.Join(names, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "no domain"
	}
	return s
}

// writeProbeResult prints the result in the chosen output format.
func writeProbeResult(w io.Writer, output string, res *probe.Result, now time.Time) error {
	if output == "json" {
		return writeProbeJSON(w, res, now)
	}
	res.WriteLog(w)
	return nil
}
