package console

import (
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	for _, tc := range []struct {
		name, a, b, want string
	}{
		{"same", "x\ny\n", "x\ny\n", " x  y"},
		{"changed middle", "a\nb\nc", "a\nB\nc", " a -b +B  c"},
		{"added", "a\nc", "a\nb\nc", " a +b  c"},
		{"removed", "a\nb\nc", "a\nc", " a -b  c"},
		{"from nothing", "", "a\nb", "+a +b"},
		{"to nothing", "a", "", "-a"},
		{"moved", "a\nb\nc\nd", "b\nc\na\nd", "-a  b  c +a  d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range lineDiff(tc.a, tc.b) {
				got = append(got, l.Op+l.Text)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("lineDiff = %q, want %q", g, tc.want)
			}
		})
	}
}

// FuzzLineDiff checks the diff's property: its left lines are a, its
// right lines are b, and no line is both removed and added needlessly
// at the same place (kept lines are equal on both sides by construction).
func FuzzLineDiff(f *testing.F) {
	f.Add("a\nb\nc", "a\nB\nc")
	f.Add("", "x")
	f.Add("{\n  \"a\": 1\n}", "{\n  \"a\": 2,\n  \"b\": 3\n}")
	f.Fuzz(func(t *testing.T, a, b string) {
		var left, right []string
		for _, l := range lineDiff(a, b) {
			switch l.Op {
			case " ":
				left, right = append(left, l.Text), append(right, l.Text)
			case "-":
				left = append(left, l.Text)
			case "+":
				right = append(right, l.Text)
			default:
				t.Fatalf("op %q", l.Op)
			}
		}
		if strings.Join(left, "\n") != strings.Join(splitLines(a), "\n") || strings.Join(right, "\n") != strings.Join(splitLines(b), "\n") {
			t.Fatalf("diff of %q and %q does not rebuild them", a, b)
		}
	})
}
