package totp

import (
	"strings"
	"testing"
	"time"
)

// RFC 6238 appendix B (SHA-1): the last six digits of its eight.
func TestCodeRFC6238(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := Code(secret, Step(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("T=%d: code %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	cur := Step(now)
	for _, tc := range []struct {
		name string
		code string
		step int64
		ok   bool
	}{
		{"current", Code(secret, cur), cur, true},
		{"spaced", Code(secret, cur)[:3] + " " + Code(secret, cur)[3:], cur, true},
		{"previous step", Code(secret, cur-1), cur - 1, true},
		{"next step", Code(secret, cur+1), cur + 1, true},
		{"two steps old", Code(secret, cur-2), 0, false},
		{"two steps ahead", Code(secret, cur+2), 0, false},
		{"short", "12345", 0, false},
		{"letters", "12a456", 0, false},
		{"empty", "", 0, false},
		{"long", strings.Repeat("1", 100), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step, ok := Match(secret, tc.code, now)
			if ok != tc.ok || step != tc.step {
				t.Fatalf("Match(%q) = %d, %v; want %d, %v", tc.code, step, ok, tc.step, tc.ok)
			}
		})
	}
}

func TestURIAndKey(t *testing.T) {
	secret := []byte("12345678901234567890")
	uri := URI(secret, "Ward", "ann@example.com")
	want := "otpauth://totp/Ward:ann@example.com?algorithm=SHA1&digits=6&issuer=Ward&period=30&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	if uri != want {
		t.Fatalf("URI = %s\nwant %s", uri, want)
	}
	if k := Key(secret); k != "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ" {
		t.Fatalf("Key = %q", k)
	}
}

// FuzzMatch: a code from outside never matches unless it normalizes to
// one of the codes of the window, and never panics.
func FuzzMatch(f *testing.F) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	f.Add(Code(secret, Step(now)))
	f.Add("000000")
	f.Add(" 1-2 3456")
	f.Add("١٢٣٤٥٦") // Arabic-Indic digits are not digits here
	f.Fuzz(func(t *testing.T, code string) {
		step, ok := Match(secret, code, now)
		if !ok {
			return
		}
		n, valid := Normalize(code)
		if !valid || Code(secret, step) != n || step < Step(now)-Skew || step > Step(now)+Skew {
			t.Fatalf("Match(%q) accepted step %d", code, step)
		}
	})
}

// BenchmarkMatch is the pure cost of checking a code (three HMACs).
func BenchmarkMatch(b *testing.B) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	code := Code(secret, Step(now)-1)
	for range b.N {
		if _, ok := Match(secret, code, now); !ok {
			b.Fatal("no match")
		}
	}
}
