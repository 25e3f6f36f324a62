package main

import (
	"runtime"
	"testing"

	"github.com/wardhealth/ward/internal/store"
)

func TestReadConcurrency(t *testing.T) {
	for _, tc := range []struct {
		flag int
		d    store.Dialect
		want int
	}{
		{0, store.SQLite, runtime.GOMAXPROCS(0)},
		{0, store.Postgres, 0},
		{-1, store.SQLite, 0},
		{6, store.SQLite, 6},
		{6, store.Postgres, 6},
	} {
		if got := readConcurrency(tc.flag, tc.d); got != tc.want {
			t.Errorf("readConcurrency(%d, %v) = %d, want %d", tc.flag, tc.d, got, tc.want)
		}
	}
}
