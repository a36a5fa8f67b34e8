package server

import (
	"fmt"
	"sort"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Loaded is a configuration with the prober of each of its modules, built
// once per load: a reload replaces both at once, so a scrape never meets a
// module of one load and a prober of another.
type Loaded struct {
	Config  *config.Config
	probers map[string]*probe.Prober
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
	l := &Loaded{Config: cfg, probers: make(map[string]*probe.Prober, len(cfg.Modules))}
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
	}
	return l, nil
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
