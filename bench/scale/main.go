// Command scale measures autodiscover_exporter at scale against the
// simulated estate with injected network latency, and blackbox_exporter
// probing the same HTTPS endpoints in the same run, so the two can be
// compared on this machine. bench/run.sh builds the binaries and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

type options struct {
	exporter, blackbox  string
	floor               string
	mailboxes, domains  int
	latency, overheadRT time.Duration
	cycle               time.Duration
	overheadRuns        int
	heapProfile         string
	cpuProfile          string
	// scenario is hybrid (the default: four TLS hosts, three redirects)
	// or onprem (Exchange with its client access services, one hop).
	scenario string
	// endpoints is the module's endpoints list, comma-separated.
	endpoints string
	// growth lists mailbox counts for the growth rows, each probed over
	// growthCycle by a fresh exporter; empty runs the full table.
	growth      []int
	growthCycle time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.exporter, "exporter", "", "path of the autodiscover_exporter binary")
	flag.StringVar(&o.blackbox, "blackbox", "", "path of blackbox_exporter (empty: skip the peer)")
	flag.StringVar(&o.floor, "floor", "", "path of bench/floor, the minimal client (empty: skip the floor)")
	flag.IntVar(&o.mailboxes, "mailboxes", 1000, "mailboxes probed per cycle")
	flag.IntVar(&o.domains, "domains", 50, "hybrid domains the mailboxes are spread over")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "latency injected into every DNS and HTTP answer during the cycle")
	flag.DurationVar(&o.overheadRT, "overhead-latency", 20*time.Millisecond, "latency per round trip for the single-probe overhead measurement")
	flag.IntVar(&o.overheadRuns, "overhead-runs", 10, "single probes for the overhead measurement")
	flag.StringVar(&o.cpuProfile, "cpu-profile", "", "write the exporter's CPU profile of the cycle to this file")
	flag.StringVar(&o.heapProfile, "heap-profile", "", "write the exporter's heap profile, taken in the middle of the burst, to this file")
	flag.DurationVar(&o.cycle, "cycle", 10*time.Second, "scrape interval the mailboxes are spread over (and their scrape timeout)")
	flag.StringVar(&o.scenario, "scenario", "hybrid", "hybrid (four TLS hosts and three redirects per chain) or onprem (Exchange with EWS, MAPI/HTTP, OAB and OWA on mail.<domain>)")
	flag.StringVar(&o.endpoints, "endpoints", "", "the module's endpoints, comma-separated (e.g. ews,mapi,oab,owa); empty checks none")
	growth := flag.String("growth", "", "comma-separated mailbox counts: print only the growth rows, each a fresh estate and exporter over -growth-cycle (e.g. 100,1000,10000)")
	flag.DurationVar(&o.growthCycle, "growth-cycle", 60*time.Second, "the cycle of the growth rows")
	flag.Parse()
	for _, f := range strings.Split(*growth, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			o.growth = append(o.growth, n)
		}
	}
	if o.scenario != "hybrid" && o.scenario != "onprem" {
		fmt.Fprintln(os.Stderr, "scale: -scenario must be hybrid or onprem")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.exporter == "" {
		return errors.New("-exporter is required")
	}
	if len(o.growth) > 0 {
		return runGrowth(o)
	}
	b, err := newBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, err := b.startExporter(ctx)
	if err != nil {
		return err
	}
	defer stop()
	single, err := b.singleProbes()
	if err != nil {
		return err
	}
	cycle := b.cycle()
	burst := b.burst()
	printScale(o, single, cycle, burst)
	var floor floorResult
	if o.floor != "" && o.scenario == "hybrid" && o.endpoints == "" {
		if floor, err = runFloor(ctx, o, b); err != nil {
			return err
		}
		printFloor(o, floor, cycle.cpu)
	}
	var bbPerChain float64
	if o.blackbox == "" || o.scenario != "hybrid" {
		fmt.Println("\nblackbox_exporter: not given, peer not measured")
	} else if bbPerChain, err = runBlackbox(ctx, o, b, cycle.cpu); err != nil {
		return err
	}
	printTargets(o, cycle.cpu, floor, bbPerChain, burst.peakRSS)
	return nil
}

// printTargets sets the measures beside issue 18's targets.
func printTargets(o options, ourCPU time.Duration, floor floorResult, bbPerChain float64, peakRSS int64) {
	ours := float64(ourCPU.Microseconds()) / 1000 / float64(o.mailboxes)
	fmt.Printf("\n## Against the targets (2 cores, measured side by side in this run)\n\n| measure | value | target |\n|---|---|---|\n")
	if floor.chains > 0 {
		fmt.Printf("| CPU per chain ÷ the floor's | %.2f | ≤ 1.25 |\n", ours/(float64(floor.cpu.Microseconds())/1000/float64(floor.chains)))
	}
	if bbPerChain > 0 {
		fmt.Printf("| CPU per chain ÷ blackbox_exporter's for the same requests | %.2f | ≤ 0.45 |\n", ours/bbPerChain)
	}
	fmt.Printf("| peak RSS, %d chains at once, default settings | %.1f MiB | ≤ 150 MiB at 1,000 |\n", o.mailboxes, float64(peakRSS)/(1<<20))
}
