package main

import (
	"strconv"

	"github.com/wardhealth/ward/bench/internal/proccpu"
)

// The machine is shared, so a throughput figure alone says little: the
// subscription suite also reports the CPU that Ward and its database's
// PostgreSQL backends spent per delivery, and the load average.

// cpuSnap is CPU seconds used so far by the server and by the backends of
// its PostgreSQL database (by pid).
type cpuSnap struct {
	ward float64
	pg   map[string]float64
}

func (w *ward) cpu() cpuSnap {
	s := cpuSnap{ward: proccpu.Proc(strconv.Itoa(w.pid()))}
	if w.database != "" {
		s.pg = proccpu.Comm("postgres", w.database)
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
