// Package proccpu reads processes' CPU time from /proc (Linux), for the
// benchmarks' CPU-per-request figures: on a shared machine throughput
// alone says little.
package proccpu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// Proc is a process's user+system CPU seconds, all threads included (0
// if it cannot be read).
func Proc(pid string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: state is
	// [0], utime [11], stime [12].
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / clockTicks
}

// Comm is Proc of every process named comm, by pid (PostgreSQL runs one
// backend per connection); with db set, only those whose title names it
// ("postgres: 15/main: user db 127.0.0.1(port) idle").
func Comm(comm, db string) map[string]float64 {
	out := map[string]float64{}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(b)) != comm {
			continue
		}
		if db != "" {
			title, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
			if err != nil || !strings.Contains(string(title), " "+db+" ") {
				continue
			}
		}
		out[d.Name()] = Proc(d.Name())
	}
	return out
}

// Delta is the CPU the processes alive at the end used since the start
// (all of it for those that started in between). A process that exited
// in between is lost, so this is a lower bound.
func Delta(start, end map[string]float64) float64 {
	total := 0.0
	for pid, t := range end {
		total += max(0, t-start[pid])
	}
	return total
}

// LoadAvg is /proc/loadavg's first three fields ("?" if unreadable).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
