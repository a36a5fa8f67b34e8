package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-kit/log/level"
)

func badRequest(w http.ResponseWriter, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
}

func handleHealthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "Healthy")
}

// sdTarget is one entry of Prometheus' HTTP service discovery format.
type sdTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

func (s *Server) handleSD(w http.ResponseWriter, _ *http.Request) {
	cfg := s.Config()
	out := make([]sdTarget, 0, len(cfg.Mailboxes))
	for _, mb := range cfg.Mailboxes {
		labels := map[string]string{"__meta_autodiscover_module": mb.Module}
		for k, v := range mb.Labels {
			labels[k] = v
		}
		out = append(out, sdTarget{Targets: []string{mb.Name}, Labels: labels})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) handleConfig(w http.ResponseWriter, _ *http.Request) {
	out, err := s.Config().Redacted()
	if err != nil {
		http.Error(w, "cannot render the configuration: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out)
}

// handleBackoffReset sends credentials again for one mailbox (?target=)
// or all: a person checked the account.
func (s *Server) handleBackoffReset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "reset takes POST", http.StatusMethodNotAllowed)
		return
	}
	target := r.URL.Query().Get("target")
	if target == "" {
		s.backoff.ResetAll()
		_ = level.Info(s.logger).Log("msg", "credential back-off reset for every mailbox")
		fmt.Fprintln(w, "credential back-off reset for every mailbox")
		return
	}
	key, ok := s.loaded().credentialKey(target)
	if !ok {
		badRequest(w, "unknown target %q", target)
		return
	}
	// The back-off belongs to the account: resetting it for one mailbox
	// resets it for every mailbox that shares the account.
	s.backoff.Reset(key)
	_ = level.Info(s.logger).Log("msg", "credential back-off reset", "target", target)
	fmt.Fprintf(w, "credential back-off reset for %s and every mailbox sharing its account\n", target)
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "reload takes POST", http.StatusMethodNotAllowed)
		return
	}
	if err := s.Reload(); err != nil {
		http.Error(w, "reload rejected, the previous configuration stays in use:\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "configuration reloaded")
}
