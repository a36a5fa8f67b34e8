package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestMemoryLimitRatioOutsideZeroToOneIsRefused(t *testing.T) {
	for _, r := range []float64{0, -0.5, 1.01, math.NaN()} {
		if _, _, err := setMemoryLimit(r, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "auto-gomemlimit.ratio") {
			t.Errorf("ratio %v: err %v, want a refusal naming the flag", r, err)
		}
	}
}

func TestMemoryLimitFromTheEnvironmentWins(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	debug.SetMemoryLimit(123 << 20)
	t.Setenv("GOMEMLIMIT", "123MiB")
	limit, _, err := setMemoryLimit(0.9, slog.New(slog.DiscardHandler))
	if err != nil || limit != 123<<20 || debug.SetMemoryLimit(-1) != 123<<20 {
		t.Errorf("limit %d (err %v): the operator's GOMEMLIMIT must stay", limit, err)
	}
}
