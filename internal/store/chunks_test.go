package store

import (
	"slices"
	"testing"
)

func TestChunkSizes(t *testing.T) {
	for _, c := range []struct {
		n, largest int
		want       []int
	}{
		{0, 64, nil}, {1, 64, []int{1}}, {5, 64, []int{4, 1}}, {23, 64, []int{16, 4, 1, 1, 1}},
		{64, 64, []int{64}}, {150, 64, []int{64, 64, 16, 4, 1, 1}}, {300, 128, []int{128, 128, 16, 16, 4, 4, 4}},
	} {
		got := chunkSizes(c.n, c.largest)
		sum := 0
		for _, s := range got {
			sum += s
		}
		if !slices.Equal(got, c.want) || sum != c.n {
			t.Errorf("chunkSizes(%d, %d) = %v, want %v", c.n, c.largest, got, c.want)
		}
	}
}
