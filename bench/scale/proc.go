package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc reads a process's CPU time and peak RSS from /proc.
type proc struct{ pid int }

func (p proc) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" of the command name: utime is 14th, stime 15th.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // CLK_TCK is 100 on Linux
}

func (p proc) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n * 1024
		}
	}
	return 0
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func start(ctx context.Context, bin string, args ...string) (*exec.Cmd, proc, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), os.Getenv("EXPORTER_ENV"))
	if err := cmd.Start(); err != nil {
		return nil, proc{}, err
	}
	return cmd, proc{pid: cmd.Process.Pid}, nil
}

func waitHealthy(url string) error {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered", url)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}}

func get(u string, timeout time.Duration) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', 3, 64))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func metric(body, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// scrapeResult is one /probe scrape as the load generator saw it.
type scrapeResult struct {
	ok       bool
	duration time.Duration // the chain's own duration, as exported
	done     time.Duration // from the cycle start to the answer
	// endpointFailed: an autodiscover_endpoint_success series was 0.
	endpointFailed bool
}

var failedEndpoint = regexp.MustCompile(`(?m)^autodiscover_endpoint_success\{[^}]*\} 0$`)

// spread scrapes every target once, evenly spread over cycle (as Prometheus
// spreads its targets), or all at once when cycle is 0.
func spread(urls []string, cycle, timeout time.Duration) []scrapeResult {
	out := make([]scrapeResult, len(urls))
	var wg sync.WaitGroup
	begin := time.Now()
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cycle > 0 {
				time.Sleep(time.Until(begin.Add(time.Duration(i) * cycle / time.Duration(len(urls)))))
			}
			body, err := get(u, timeout)
			out[i] = scrapeResult{
				ok:             err == nil && metric(body, "autodiscover_probe_success") == 1,
				duration:       time.Duration(metric(body, "autodiscover_probe_duration_seconds") * float64(time.Second)),
				done:           time.Since(begin),
				endpointFailed: err == nil && failedEndpoint.MatchString(body),
			}
			if err == nil && strings.Contains(u, "module=hop") {
				out[i].ok = metric(body, "probe_success") >= 0
			}
		}()
	}
	wg.Wait()
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
