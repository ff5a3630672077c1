package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc: USER_HZ, 100 on Linux.
const userHZ = 100

// cpuTimes is the CPU time, in seconds, used so far by the parts of a
// worker benchmark run: what their difference over a drain or a loop,
// divided by the users it handled, says each part costs a user.
type cpuTimes struct {
	// machine is the busy time of every core (/proc/stat).
	machine float64
	// bench is this process's: the embedded NATS server, the SMTP sink,
	// the raw loops and the count polls.
	bench float64
	// postgres is every process named postgres, those the postmaster has
	// reaped included.
	postgres float64
	// worker is the child worker's, when one runs.
	worker float64
}

// sub is c minus an earlier reading.
func (c cpuTimes) sub(earlier cpuTimes) cpuTimes {
	return cpuTimes{
		machine:  c.machine - earlier.machine,
		bench:    c.bench - earlier.bench,
		postgres: c.postgres - earlier.postgres,
		worker:   c.worker - earlier.worker,
	}
}

// cpuMeter measures the CPU used between startCPU and stop.
type cpuMeter struct {
	start cpuTimes
	ok    bool
	// workerPID is the child worker's, once it runs: it started after
	// start, so all its time counts.
	workerPID int
}

// startCPU reads the CPU times now, workerPID's too (none when 0).
func startCPU(workerPID int) *cpuMeter {
	c, err := readCPU(workerPID)
	return &cpuMeter{start: c, ok: err == nil, workerPID: workerPID}
}

// stop returns the CPU used since startCPU, or nil where /proc could not
// be read.
func (m *cpuMeter) stop() *cpuTimes {
	if !m.ok {
		return nil
	}
	c, err := readCPU(m.workerPID)
	if err != nil {
		return nil
	}
	used := c.sub(m.start)
	return &used
}

// readCPU reads the CPU times from /proc, workerPID's as the worker's
// (none when 0). It fails where there is no /proc.
func readCPU(workerPID int) (cpuTimes, error) {
	var c cpuTimes
	var err error
	if c.machine, err = readMachineBusy("/proc/stat"); err != nil {
		return cpuTimes{}, err
	}
	self, err := readProcStat("/proc/self/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	c.bench = self.own()
	if workerPID != 0 {
		w, err := readProcStat(fmt.Sprintf("/proc/%d/stat", workerPID))
		if err != nil {
			return cpuTimes{}, err
		}
		c.worker = w.own()
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	for _, path := range stats {
		p, err := readProcStat(path)
		if err != nil || p.comm != "postgres" {
			continue // gone meanwhile, or not PostgreSQL's
		}
		// A backend forks nothing, so the reaped children's time is the
		// postmaster's only: summed over all, none is counted twice.
		c.postgres += p.own() + p.children
	}
	return c, nil
}

// procStat is what the worker benchmark reads of a /proc/<pid>/stat.
type procStat struct {
	comm string
	// user and system are the process's own CPU seconds; children are its
	// reaped children's.
	user, system, children float64
}

// own is the process's own CPU seconds.
func (p procStat) own() float64 { return p.user + p.system }

// readProcStat reads and parses a /proc/<pid>/stat file.
func readProcStat(path string) (procStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat parses a /proc/<pid>/stat line: pid (comm) state ppid …,
// whose fields 14 to 17 are utime, stime, cutime and cstime. comm may hold
// spaces and parentheses, so the fields are counted from its last ')'.
func parseProcStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("proc stat: no (comm)")
	}
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after comm, want at least 15", len(fields))
	}
	var ticks [4]float64
	for i := range ticks {
		v, err := strconv.ParseUint(fields[11+i], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("proc stat: field %d: %w", 14+i, err)
		}
		ticks[i] = float64(v) / userHZ
	}
	return procStat{comm: string(b[open+1 : end]), user: ticks[0], system: ticks[1], children: ticks[2] + ticks[3]}, nil
}

// readMachineBusy reads the busy CPU seconds of every core from /proc/stat.
func readMachineBusy(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(b)
}

// parseMachineBusy parses /proc/stat's first line, "cpu user nice system
// idle iowait irq softirq steal …": busy is all but idle and iowait.
func parseMachineBusy(b []byte) (float64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q is not the cpu line", line)
	}
	var busy uint64
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return float64(busy) / userHZ, nil
}
