package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/bench/floorjob"
)

// floorResult is the minimal client's run over the same cycle.
type floorResult struct {
	chains, succeeded int
	cpu               time.Duration
}

// runFloor walks every mailbox's chain once with bench/floor, spread over
// the cycle under the same injected latency, and reads its CPU time from
// /proc just before it exits.
func runFloor(ctx context.Context, o options, b *bench) (floorResult, error) {
	job := floorjob.Job{DNSServer: b.estate.DNSAddr(), ConnectTo: b.estate.ConnectTo(), CAFile: b.caPath(), Username: benchAccount, Password: benchPassword}
	for _, mb := range b.mailboxes {
		job.Mailboxes = append(job.Mailboxes, mb.Address)
	}
	data, err := json.Marshal(job)
	if err != nil {
		return floorResult{}, err
	}
	jobPath := filepath.Join(b.dir, "floor.json")
	if err := os.WriteFile(jobPath, data, 0o600); err != nil {
		return floorResult{}, err
	}
	b.estate.SetLatency(o.latency)
	cmd := exec.CommandContext(ctx, o.floor, "-job", jobPath, "-cycle", o.cycle.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return floorResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return floorResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return floorResult{}, err
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return floorResult{}, fmt.Errorf("floor: %w", err)
	}
	var r floorResult
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "done %d %d", &r.chains, &r.succeeded); err != nil {
		return floorResult{}, fmt.Errorf("floor said %q: %w", line, err)
	}
	r.cpu = proc{pid: cmd.Process.Pid}.cpu()
	return r, nil
}

func printFloor(o options, f floorResult, ourCPU time.Duration) {
	ours := float64(ourCPU.Microseconds()) / 1000 / float64(o.mailboxes)
	floor := float64(f.cpu.Microseconds()) / 1000 / float64(max(f.chains, 1))
	fmt.Printf("\n## The floor: a minimal client walking the same chains (bench/floor)\n\n")
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| chains that returned settings, spread over %v | %d of %d |\n", o.cycle, f.succeeded, f.chains)
	fmt.Printf("| floor CPU per chain (its whole process) | %.2f ms |\n", floor)
	fmt.Printf("| CPU ratio: ours per chain ÷ the floor's | %.2f |\n", ours/floor)
}
