package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// startExporter starts the exporter on the bench's configuration and
// waits until it has answered one probe.
func (b *bench) startExporter(ctx context.Context) (stop func(), err error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd, exp, err := start(ctx, b.o.exporter, "--config.file="+b.configPath, "--web.listen-address="+addr, "--log.level=warn",
		"--probe.max-concurrent="+strconv.Itoa(max(b.o.mailboxes, 1)), "--history.limit=10", "--web.enable-pprof")
	if err != nil {
		return nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	b.base, b.exporter = "http://"+addr, exp
	if err := waitHealthy(b.base + "/-/healthy"); err != nil {
		stop()
		return nil, err
	}
	if _, err := get(b.probeURL(0), b.o.cycle); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// growthRow is one mailbox count's cycle, probed by a fresh exporter.
type growthRow struct {
	mailboxes  int
	cycle      cycleResult
	peakRSS    int64
	cpuPerMs   float64
	allocsPerC float64
	// floorPerMs is the floor's CPU per chain over the same cycle (0
	// without -floor).
	floorPerMs float64
}

// runGrowth measures how the cost grows: per row a fresh estate and
// exporter, the mailboxes spread over the growth cycle, the CPU per chain
// and the peak RSS.
func runGrowth(o options) error {
	var rows []growthRow
	for _, n := range o.growth {
		ro := o
		ro.mailboxes, ro.cycle = n, o.growthCycle
		ro.domains = min(o.domains, n)
		b, err := newBench(ro)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		stop, err := b.startExporter(ctx)
		if err != nil {
			cancel()
			b.close()
			return err
		}
		c := b.cycle()
		row := growthRow{mailboxes: n, cycle: c, peakRSS: b.exporter.peakRSS(),
			cpuPerMs:   float64(c.cpu.Microseconds()) / 1000 / float64(n),
			allocsPerC: c.mallocs / float64(n)}
		stop()
		if o.floor != "" {
			f, err := runFloor(ctx, ro, b)
			if err != nil {
				cancel()
				b.close()
				return err
			}
			row.floorPerMs = float64(f.cpu.Microseconds()) / 1000 / float64(max(f.chains, 1))
		}
		rows = append(rows, row)
		cancel()
		b.close()
	}
	fmt.Printf("\n## How cost grows (each row a fresh exporter; mailboxes spread over %v, %v per round trip)\n\n", o.growthCycle, o.latency)
	fmt.Printf("| mailboxes | chains that returned settings | CPU per chain | the floor's | ÷ floor | allocations per chain | p50 / p99 probe duration | p99 ÷ p50 | peak RSS | RSS per mailbox |\n|---|---|---|---|---|---|---|---|---|---|\n")
	lo, hi := rows[0].cpuPerMs, rows[0].cpuPerMs
	for _, r := range rows {
		p50, p99 := percentile(r.cycle.durations, 0.5), percentile(r.cycle.durations, 0.99)
		ratio := "–"
		if r.floorPerMs > 0 {
			ratio = fmt.Sprintf("%.2f", r.cpuPerMs/r.floorPerMs)
		}
		fmt.Printf("| %d | %d | %.2f ms | %.2f ms | %s | %.0f | %v / %v | %.2f | %.1f MiB | %.0f KiB |\n", r.mailboxes, r.cycle.succeeded, r.cpuPerMs, r.floorPerMs, ratio, r.allocsPerC,
			p50.Round(time.Millisecond), p99.Round(time.Millisecond), float64(p99)/float64(max(p50, 1)), float64(r.peakRSS)/(1<<20), float64(r.peakRSS)/1024/float64(r.mailboxes))
		lo, hi = min(lo, r.cpuPerMs), max(hi, r.cpuPerMs)
	}
	fmt.Printf("\nCPU per chain varies by %.1f %% over the rows (target: within 10 %%).\n", 100*(hi-lo)/lo)
	return nil
}
