package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// freePorts finds n distinct free ports on 127.0.0.1. For "udp+tcp" each
// port is free for both, as a KDC needs.
func freeLoopbackPorts(network string, n int) ([]int, error) {
	var ports []int
	var held []interface{ Close() error }
	defer func() {
		for _, h := range held {
			_ = h.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 50 {
			return nil, errors.New("no free loopback port")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if network == "udp+tcp" {
			pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				_ = ln.Close()
				continue
			}
			held = append(held, pc)
		}
		held = append(held, ln)
		ports = append(ports, port)
	}
	return ports, nil
}

// labProcess is a server process started in its own process group, so that
// the signals that stop it reach anything it may fork, and a terminal's
// ^C to the tests does not reach it before its Close.
type labProcess struct {
	cmd    *exec.Cmd
	stderr *tailWriter
	done   chan struct{}
	err    error

	stopOnce sync.Once
	stopErr  error
}

func startLabProcess(cmd *exec.Cmd) (*labProcess, error) {
	p := &labProcess{cmd: cmd, stderr: &tailWriter{max: 8 << 10}, done: make(chan struct{})}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *labProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wrotePIDFile tells whether path names this process, which servers write
// once they have set up their listeners.
func (p *labProcess) wrotePIDFile(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid == p.cmd.Process.Pid
}

func (p *labProcess) waitErr() error {
	<-p.done
	return p.err
}

// stop asks the process group to end, and kills it if it has not within
// five seconds.
//
// A server that had already died is an error: whatever ran against it
// met a lab that was not there.
func (p *labProcess) stop() error {
	if p == nil {
		return nil // never started
	}
	p.stopOnce.Do(func() {
		if p.exited() {
			p.stopErr = fmt.Errorf("%s had exited (%v): %s", filepath.Base(p.cmd.Path), p.err, p.stderr.String())
			return
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p.stopErr
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

func lastBytes(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
