package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The machine is shared (other agents build and test on the same two
// cores), so each scenario records where the CPU went during its measured
// window: the server under test, this load generator, PostgreSQL's
// processes, and everything else. "Other" is the interference.

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuShare is CPU use in cores (CPU-seconds per second of the window).
type cpuShare struct {
	Server   float64 `json:"server"`
	LoadGen  float64 `json:"loadGenerator"`
	Postgres float64 `json:"postgres"`
	Busy     float64 `json:"machineBusy"`
	Other    float64 `json:"other"`
	// ServerMicros is server CPU per measured request, filled by the
	// report (it needs the request count).
	ServerMicros float64 `json:"serverMicrosPerRequest"`
	// Context switches a second (voluntary and not) of the server's
	// threads and of the benchmark database's backends: three processes
	// on two cores switch more, and each switch costs caches.
	ServerSwitches   float64 `json:"serverSwitchesPerSecond"`
	PostgresSwitches float64 `json:"postgresSwitchesPerSecond"`
}

type cpuSample struct {
	server, self, busy float64            // seconds
	postgres           map[string]float64 // seconds, by pid
	serverSw           float64            // context switches
	pgSw               map[string]float64 // context switches, by pid
}

type cpuMeter struct {
	pids    []int // the server's processes (replicas: all of them)
	started bool
	at      cpuSample
	// pgDB: PostgreSQL's CPU is that of the backends of this database only
	// (other agents' tests share the PostgreSQL server; its background
	// processes, WAL writer, checkpointer, autovacuum, count as other);
	// empty: the target uses no PostgreSQL.
	pgDB string
}

func (m *cpuMeter) start(ps []*proc, pgDB string) {
	for _, p := range ps {
		if p != nil {
			m.pids = append(m.pids, p.pid())
		}
	}
	if len(m.pids) == 0 {
		return
	}
	m.started, m.pgDB = true, pgDB
	m.at = m.sample()
}

func (m *cpuMeter) sample() cpuSample {
	server, sw := 0.0, 0.0
	for _, pid := range m.pids {
		server += procCPU(strconv.Itoa(pid))
		sw += threadSwitches(strconv.Itoa(pid))
	}
	var pg, pgSw map[string]float64 // a target without a database of its own uses none
	if m.pgDB != "" {
		pg = commCPU("postgres", m.pgDB)
		pgSw = map[string]float64{}
		for pid := range pg {
			pgSw[pid] = threadSwitches(pid)
		}
	}
	return cpuSample{server: server, self: procCPU("self"), postgres: pg, busy: machineBusy(), serverSw: sw, pgSw: pgSw}
}

// stop returns the shares since start over elapsed wall time.
func (m *cpuMeter) stop(elapsed time.Duration) cpuShare {
	if !m.started || elapsed <= 0 {
		return cpuShare{}
	}
	now := m.sample()
	sec := elapsed.Seconds()
	s := cpuShare{
		Server:   (now.server - m.at.server) / sec,
		LoadGen:  (now.self - m.at.self) / sec,
		Postgres: commDelta(m.at.postgres, now.postgres) / sec,
		Busy:     (now.busy - m.at.busy) / sec,

		ServerSwitches:   (now.serverSw - m.at.serverSw) / sec,
		PostgresSwitches: commDelta(m.at.pgSw, now.pgSw) / sec,
	}
	s.Other = max(0, s.Busy-s.Server-s.LoadGen-s.Postgres)
	return s
}

// procCPU is a process's user+system CPU seconds, all threads included.
func procCPU(pid string) float64 {
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

// threadSwitches is the context switches of all of a process's live
// threads (/proc/PID/task/TID/status; those of exited threads are lost).
func threadSwitches(pid string) float64 {
	tasks, err := os.ReadDir(filepath.Join("/proc", pid, "task"))
	if err != nil {
		return 0
	}
	n := 0.0
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "task", t.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				n += x
			}
		}
	}
	return n
}

// commCPU is procCPU of every process named comm, by pid (PostgreSQL runs
// one backend per connection); with db set, only those whose title names
// it ("postgres: 15/main: user db 127.0.0.1(port) idle").
func commCPU(comm, db string) map[string]float64 {
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
		out[d.Name()] = procCPU(d.Name())
	}
	return out
}

// commDelta is the CPU the processes alive at the end used since the
// start (all of it for those that started in between). A process that
// exited in between is lost, so this is a lower bound.
func commDelta(start, end map[string]float64) float64 {
	total := 0.0
	for pid, t := range end {
		total += max(0, t-start[pid])
	}
	return total
}

// machineBusy is the CPU seconds all cores spent not idle since boot.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var total, idle float64
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return (total - idle) / clockTicks
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
