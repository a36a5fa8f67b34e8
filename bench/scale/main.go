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
	// scenario is hybrid (the default: four TLS hosts, three redirects)
	// or onprem (Exchange with its client access services, one hop).
	scenario string
	// endpoints is the module's endpoints list, comma-separated.
	endpoints string
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
	flag.StringVar(&o.heapProfile, "heap-profile", "", "write the exporter's heap profile, taken in the middle of the burst, to this file")
	flag.DurationVar(&o.cycle, "cycle", 10*time.Second, "scrape interval the mailboxes are spread over (and their scrape timeout)")
	flag.StringVar(&o.scenario, "scenario", "hybrid", "hybrid (four TLS hosts and three redirects per chain) or onprem (Exchange with EWS, MAPI/HTTP, OAB and OWA on mail.<domain>)")
	flag.StringVar(&o.endpoints, "endpoints", "", "the module's endpoints, comma-separated (e.g. ews,mapi,oab,owa); empty checks none")
	flag.Parse()
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
	b, err := newBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := freePort()
	if err != nil {
		return err
	}
	cmd, exp, err := start(ctx, o.exporter, "--config.file="+b.configPath, "--web.listen-address="+addr, "--log.level=warn",
		"--probe.max-concurrent="+strconv.Itoa(max(o.mailboxes, 1)), "--history.limit=10", "--web.enable-pprof")
	if err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	b.base, b.exporter = "http://"+addr, exp
	if err := waitHealthy(b.base + "/-/healthy"); err != nil {
		return err
	}
	if _, err := get(b.probeURL(0), o.cycle); err != nil {
		return err
	}
	single, err := b.singleProbes()
	if err != nil {
		return err
	}
	cycle := b.cycle()
	burst := b.burst()
	printScale(o, single, cycle, burst)
	if o.floor != "" && o.scenario == "hybrid" && o.endpoints == "" {
		f, err := runFloor(ctx, o, b)
		if err != nil {
			return err
		}
		printFloor(o, f, cycle.cpu)
	}
	if o.blackbox == "" || o.scenario != "hybrid" {
		fmt.Println("\nblackbox_exporter: not given, peer not measured")
		return nil
	}
	return runBlackbox(ctx, o, b, cycle.cpu)
}
