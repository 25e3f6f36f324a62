package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/bench/internal/proccpu"
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
		server += proccpu.Proc(strconv.Itoa(pid))
		sw += threadSwitches(strconv.Itoa(pid))
	}
	var pg, pgSw map[string]float64 // a target without a database of its own uses none
	if m.pgDB != "" {
		pg = proccpu.Comm("postgres", m.pgDB)
		pgSw = map[string]float64{}
		for pid := range pg {
			pgSw[pid] = threadSwitches(pid)
		}
	}
	return cpuSample{server: server, self: proccpu.Proc("self"), postgres: pg, busy: machineBusy(), serverSw: sw, pgSw: pgSw}
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
		Postgres: proccpu.Delta(m.at.postgres, now.postgres) / sec,
		Busy:     (now.busy - m.at.busy) / sec,

		ServerSwitches:   (now.serverSw - m.at.serverSw) / sec,
		PostgresSwitches: proccpu.Delta(m.at.pgSw, now.pgSw) / sec,
	}
	s.Other = max(0, s.Busy-s.Server-s.LoadGen-s.Postgres)
	return s
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
