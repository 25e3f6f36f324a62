package iam

import (
	"testing"
	"time"
)

func TestHumanWait(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "a moment"},
		{time.Second, "1 second"},
		{1500 * time.Millisecond, "2 seconds"},
		{59 * time.Second, "59 seconds"},
		{time.Minute, "1 minute"},
		{897 * time.Second, "15 minutes"},
		{15 * time.Minute, "15 minutes"},
		{90 * time.Minute, "90 minutes"},
		{91 * time.Minute, "2 hours"},
	} {
		if got := humanWait(c.d); got != c.want {
			t.Errorf("humanWait(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
