package server

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Loaded is a configuration with the prober of each of its modules, built
// once per load: a reload replaces both at once, so a scrape never meets a
// module of one load and a prober of another.
type Loaded struct {
	Config  *config.Config
	probers map[string]*probe.Prober
	// paired lists, per module, the domains its credentials belong to:
	// those of its mailboxes and its allowed_domains.
	paired map[string][]string
}

// Load reads the configuration file and builds its probers. A broken
// file, or a module whose prober cannot work (no resolver), is an error
// naming the file or the module.
func Load(path string, env probe.Env) (*Loaded, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return Build(cfg, env)
}

// Build makes the probers of a loaded configuration.
func Build(cfg *config.Config, env probe.Env) (*Loaded, error) {
	l := &Loaded{Config: cfg, probers: make(map[string]*probe.Prober, len(cfg.Modules)), paired: map[string][]string{}}
	for _, mb := range cfg.Mailboxes {
		l.paired[mb.Module] = append(l.paired[mb.Module], mb.Domain())
	}
	names := make([]string, 0, len(cfg.Modules))
	for name := range cfg.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := probe.NewProber(cfg.Modules[name].Settings(), env)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", name, err)
		}
		l.probers[name] = p
		l.paired[name] = append(l.paired[name], cfg.Modules[name].AllowedDomains...)
	}
	return l, nil
}

// mayProbeWith says whether mailbox mb may be probed with the named
// module: its own, one without credentials, or one whose credentials the
// operator paired with mb's domain (a mailbox of the module in that
// domain, or the domain among its allowed_domains). Anything else would
// send one tenant's credentials to another tenant's servers.
func (l *Loaded) mayProbeWith(mb *config.Mailbox, module string) error {
	mod, ok := l.Config.Module(module)
	switch {
	case !ok:
		return fmt.Errorf("unknown module %q", module)
	case module == mb.Module || mod.Auth.Type == probe.AuthNone:
		return nil
	}
	for _, d := range l.paired[module] {
		if d = strings.ToLower(d); mb.Domain() == d || strings.HasSuffix(mb.Domain(), "."+d) {
			return nil
		}
	}
	return fmt.Errorf("module %q holds credentials paired with other domains than %s, the domain of %s: it may probe only its own mailboxes' domains and its allowed_domains", module, mb.Domain(), mb.Name)
}

// longestTimeout is the longest a probe of the configuration may run.
func (l *Loaded) longestTimeout() time.Duration {
	longest := time.Duration(0)
	for _, p := range l.probers {
		longest = max(longest, p.Timeout())
	}
	return longest
}

// close closes every prober of the configuration.
func (l *Loaded) close() {
	for _, p := range l.probers {
		p.Close()
	}
}

// Prober is the prober of the named module.
func (l *Loaded) Prober(module string) (*probe.Prober, bool) {
	p, ok := l.probers[module]
	return p, ok
}

// Target is what the prober needs of a configured mailbox.
func Target(mb *config.Mailbox) probe.Target {
	return probe.Target{Address: mb.NormalizedAddress(), Expect: mb.Expect}
}

// credentialKey is the back-off key of the mailbox named target: its
// module's account. ok is false for an unknown mailbox.
func (l *Loaded) credentialKey(target string) (key string, ok bool) {
	mb, ok := l.Config.Mailbox(target)
	if !ok {
		return "", false
	}
	p, ok := l.Prober(mb.Module)
	if !ok {
		return "", false
	}
	return p.CredentialKey(), true
}

// credentials fingerprints the account of every module: its key and a
// hash of its secret, so that a reload can tell a fixed password from an
// unchanged one.
func (l *Loaded) credentials() map[string]string {
	out := make(map[string]string, len(l.probers))
	for name, p := range l.probers {
		if key := p.CredentialKey(); key != "" {
			out[key] = l.Config.Modules[name].Settings().Auth.Fingerprint()
		}
	}
	return out
}
