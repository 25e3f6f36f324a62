package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The machine is shared, so a throughput figure alone says little: the
// subscription suite also reports the CPU that Ward and its database's
// PostgreSQL backends spent per delivery, and the load average.

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuSnap is CPU seconds used so far by the server and by the backends of
// its PostgreSQL database (by pid).
type cpuSnap struct {
	ward float64
	pg   map[string]float64
}

func (w *ward) cpu() cpuSnap {
	s := cpuSnap{ward: procCPU(strconv.Itoa(w.pid()))}
	if w.database != "" {
		s.pg = backendsCPU(w.database)
	}
	return s
}

// since is the CPU seconds used from a to b: the server's and PostgreSQL's
// (backends that exited in between are lost, so the latter is a lower bound).
func (b cpuSnap) since(a cpuSnap) (ward, pg float64) {
	for pid, t := range b.pg {
		pg += max(0, t-a.pg[pid])
	}
	return b.ward - a.ward, pg
}

// procCPU is a process's user+system CPU seconds, all threads included.
func procCPU(pid string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // state is [0], utime [11], stime [12]
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / clockTicks
}

// backendsCPU is procCPU of every PostgreSQL backend of database db (its
// title names it: "postgres: 15/main: user db 127.0.0.1(port) idle").
func backendsCPU(db string) map[string]float64 {
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
		if err != nil || strings.TrimSpace(string(b)) != "postgres" {
			continue
		}
		title, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(title), " "+db+" ") {
			continue
		}
		out[d.Name()] = procCPU(d.Name())
	}
	return out
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
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
