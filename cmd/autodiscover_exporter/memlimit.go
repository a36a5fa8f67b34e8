package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// setMemoryLimit sets the Go runtime's soft memory limit to ratio of the
// container's (cgroup v2 or v1) memory limit, as Prometheus does: the
// garbage collector then works harder before the kernel's OOM killer
// would. Without a cgroup limit, or with GOMEMLIMIT or AUTOMEMLIMIT set
// in the environment, the runtime's own setting stays. It returns the
// limit in force and a sentence for the log.
func setMemoryLimit(ratio float64, logger *slog.Logger) (int64, string, error) {
	if math.IsNaN(ratio) || ratio <= 0 || ratio > 1 {
		return 0, "", fmt.Errorf("--auto-gomemlimit.ratio must be in (0, 1], not %v", ratio)
	}
	limit, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithLogger(logger))
	switch {
	case errors.Is(err, memlimit.ErrCgroupsNotSupported):
		return limit, "no cgroup memory limit can be read on this system; GOMEMLIMIT left as it is", nil
	case err != nil:
		// Not fatal: the exporter works without it, as it does outside
		// a container.
		return limit, fmt.Sprintf("the container's memory limit could not be read (%v); GOMEMLIMIT left as it is", err), nil
	case limit == math.MaxInt64:
		return limit, "no memory limit in force (no container limit, no GOMEMLIMIT)", nil
	}
	return limit, fmt.Sprintf("GOMEMLIMIT is %d MiB", limit>>20), nil
}
