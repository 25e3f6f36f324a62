package rcm

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// Issue is one validation error: where in the 837P (loop, segment,
// element: "NM109", a component "CLM05-3") and which FHIR element gave the
// value (Src).
type Issue struct {
	Loop    string `json:"loop"`
	Segment string `json:"segment"`
	Element string `json:"element"`
	Src     string `json:"field"`
	Value   string `json:"value,omitempty"`
	Code    string `json:"code"`
	Message string `json:"description"`
}

func (i Issue) String() string {
	src := i.Src
	if src == "" {
		src = "(no FHIR element)"
	}
	return fmt.Sprintf("loop %s %s (%s): %s", i.Loop, i.Element, src, i.Message)
}

// Location is the SDK's "location": loop, segment and element.
func (i Issue) Location() string { return "Loop " + i.Loop + " " + i.Element }

// MaxLines is the guide's limit of service lines per claim.
const MaxLines = 50

// check is one rule on one element's value; it returns a code and a
// message, or "" when the value passes.
type check func(val string) (code, msg string)

type ruleKey struct {
	loop, seg string
	n         int // element position, 1-based
	qual      string
}

// rules: the guide's element rules, by loop, segment and element. An
// element's qualifier (its segment's 01) picks among a segment's uses
// (REF*EI vs REF*G1).
var rules = map[ruleKey][]check{
	{"1000A", "NM1", 3, ""}:  {required, maxLen(60)},
	{"1000A", "NM1", 9, ""}:  {required, maxLen(80)},
	{"1000A", "PER", 2, ""}:  {required, maxLen(60)},
	{"1000A", "PER", 4, ""}:  {required, phone},
	{"1000B", "NM1", 3, ""}:  {required, maxLen(60)},
	{"1000B", "NM1", 9, ""}:  {required, maxLen(80)},
	{"2010AA", "NM1", 3, ""}: {required, maxLen(60)},
	{"2010AA", "NM1", 9, ""}: {required, npi},
	{"2010AA", "N3", 1, ""}:  {required, maxLen(55), notPOBox},
	{"2010AA", "N4", 1, ""}:  {required, maxLen(30)},
	{"2010AA", "N4", 2, ""}:  {required, state},
	{"2010AA", "N4", 3, ""}:  {required, zip9},
	{"2010AA", "REF", 1, ""}: {oneOf("tax id type", "EI", "SY")},
	{"2010AA", "PER", 4, ""}: {phone},
	{"2010AA", "REF", 2, ""}: {required, taxID},
	{"2000B", "SBR", 9, ""}:  {required, oneOf("claim filing indicator", filingCodes...)},
	{"2010BA", "NM1", 3, ""}: {required, maxLen(60)},
	{"2010BA", "NM1", 4, ""}: {maxLen(35)},
	{"2010BA", "NM1", 9, ""}: {required, maxLen(80)},
	{"2010BA", "N3", 1, ""}:  {required, maxLen(55)},
	{"2010BA", "N4", 1, ""}:  {required, maxLen(30)},
	{"2010BA", "N4", 2, ""}:  {required, state},
	{"2010BA", "N4", 3, ""}:  {required, zip},
	{"2010BA", "DMG", 2, ""}: {required, pastDate},
	{"2010BA", "DMG", 3, ""}: {required, oneOf("sex", "M", "F", "U")},
	{"2010BB", "NM1", 3, ""}: {required, maxLen(60)},
	{"2010BB", "NM1", 9, ""}: {required, maxLen(80)},
	{"2000C", "PAT", 1, ""}:  {required, oneOf("relationship", "01", "19", "20", "21", "39", "40", "53", "G8")},
	{"2010CA", "NM1", 3, ""}: {required, maxLen(60)},
	{"2010CA", "N3", 1, ""}:  {required, maxLen(55)},
	{"2010CA", "N4", 1, ""}:  {required, maxLen(30)},
	{"2010CA", "N4", 2, ""}:  {required, state},
	{"2010CA", "N4", 3, ""}:  {required, zip},
	{"2010CA", "DMG", 2, ""}: {required, pastDate},
	{"2010CA", "DMG", 3, ""}: {required, oneOf("sex", "M", "F", "U")},
	{"2300", "CLM", 1, ""}:   {required, maxLen(38)},
	{"2300", "CLM", 2, ""}:   {required, amount},
	{"2300", "CLM", 7, ""}:   {required, oneOf("assignment", "A", "C")},
	{"2300", "DTP", 3, ""}:   {date},
	{"2300", "REF", 2, "F8"}: {required, maxLen(50)},
	{"2300", "REF", 2, "G1"}: {maxLen(50)},
	{"2310A", "NM1", 3, ""}:  {required, maxLen(60)},
	{"2310A", "NM1", 9, ""}:  {required, npi},
	{"2310B", "NM1", 3, ""}:  {required, maxLen(60)},
	{"2310B", "NM1", 9, ""}:  {required, npi},
	{"2310C", "NM1", 3, ""}:  {required, maxLen(60)},
	{"2310C", "NM1", 9, ""}:  {npi},
	{"2310C", "N3", 1, ""}:   {required, maxLen(55)},
	{"2310C", "N4", 2, ""}:   {required, state},
	{"2310C", "N4", 3, ""}:   {required, zip9},
	{"2400", "SV1", 2, ""}:   {required, amount, positive},
	{"2400", "SV1", 4, ""}:   {required, positive},
	{"2400", "SV1", 5, ""}:   {placeOfService},
	{"2400", "DTP", 3, ""}:   {required, serviceDate},
	{"2420A", "NM1", 3, ""}:  {required, maxLen(60)},
	{"2420A", "NM1", 9, ""}:  {required, npi},
}

// requiredSegments are the segments a loop cannot go without (the
// subscriber's address and demographics only when the subscriber is the
// patient).
var requiredSegments = []string{"1000A/NM1", "1000A/PER", "1000B/NM1", "2010AA/NM1", "2010AA/N3", "2010AA/N4", "2010AA/REF",
	"2000B/SBR", "2010BA/NM1", "2010BA/N3", "2010BA/N4", "2010BA/DMG", "2010BB/NM1", "2000C/PAT", "2010CA/N3", "2010CA/N4", "2010CA/DMG",
	"2300/CLM", "2300/HI", "2310C/N3", "2310C/N4", "2400/SV1", "2400/DTP"}

var filingCodes = []string{"11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM", "LM", "MA", "MB", "MC", "OF", "TV", "VA", "WC", "ZZ"}

// Validate checks the claim's 837P against the guide: required loops,
// segments and elements, code sets, NPI check digits, dates, diagnosis
// pointers and the claim total. No issue means it is valid.
func Validate(segs []Seg) []Issue {
	var out []Issue
	add := func(s Seg, n int, comp string, val V, code, msg string) {
		el := fmt.Sprintf("%s%02d", s.ID, n)
		src := val.Src
		if comp != "" {
			el += "-" + comp
			if k, err := strconv.Atoi(comp); err == nil && k <= len(val.Parts) && val.Parts[k-1] != "" {
				src = val.Parts[k-1]
			}
		}
		out = append(out, Issue{Loop: s.Loop, Segment: s.ID, Element: el, Src: src, Value: clip(val.Val), Code: code, Message: msg})
	}
	loops := map[string]bool{}
	seen := map[string]bool{} // loop/segment
	var clm *Seg
	var sum big.Rat
	var diags int
	for i := range segs {
		s := segs[i]
		loops[s.Loop] = true
		seen[s.Loop+"/"+s.ID] = true
		qual := ""
		if len(s.Vals) > 0 {
			qual = s.Vals[0].Val
		}
		for n, val := range s.Vals {
			if strings.ContainsAny(val.Val, "*~^") || s.ID != "SV1" && s.ID != "CLM" && s.ID != "HI" && strings.ContainsRune(val.Val, ':') {
				add(s, n+1, "", val, "separator", "holds an X12 separator character (* ~ ^ :), which X12 cannot escape")
				continue
			}
			checks := rules[ruleKey{s.Loop, s.ID, n + 1, qual}]
			if checks == nil {
				checks = rules[ruleKey{s.Loop, s.ID, n + 1, ""}]
			}
			for _, c := range checks {
				if code, msg := c(val.Val); code != "" {
					add(s, n+1, "", val, code, msg)
					break
				}
			}
		}
		switch s.ID {
		case "CLM":
			clm = &segs[i]
			parts := strings.Split(s.Vals[4].Val, string(x12.Default.Component))
			if code, msg := placeOfService(parts[0]); code != "" || parts[0] == "" {
				if parts[0] == "" {
					code, msg = "required", "is required"
				}
				add(s, 5, "1", s.Vals[4], code, msg)
			}
			if f := last(parts, 3); f != "1" && f != "7" && f != "8" {
				add(s, 5, "3", s.Vals[4], "code", fmt.Sprintf("claim frequency %q is not 1 (original), 7 (replacement) or 8 (void)", f))
			}
		case "HI":
			diags = len(s.Vals)
			if diags == 0 {
				add(s, 1, "", V{}, "required", "a claim needs at least one diagnosis")
			}
			if diags > 12 {
				add(s, 13, "", s.Vals[12], "repeat", fmt.Sprintf("%d diagnoses; the guide allows 12", diags))
			}
			for n, d := range s.Vals {
				q, code, _ := strings.Cut(d.Val, string(x12.Default.Component))
				if q == "ABK" || q == "ABF" {
					if c, msg := icd10(code); c != "" {
						add(s, n+1, "2", d, c, msg)
					}
				} else if q != "BK" && q != "BF" {
					add(s, n+1, "1", d, "code", fmt.Sprintf("diagnosis code list %q is not ICD-10 (ABK/ABF) or ICD-9 (BK/BF)", q))
				}
			}
		case "SV1":
			proc := strings.Split(s.Vals[0].Val, string(x12.Default.Component))
			if c, msg := procedure(last(proc, 2)); c != "" {
				add(s, 1, "2", s.Vals[0], c, msg)
			}
			if len(proc) > 6 {
				add(s, 1, "7", s.Vals[0], "repeat", "more than four procedure modifiers")
			}
			for k := 2; k < len(proc) && k < 6; k++ {
				if len(proc[k]) != 2 || !alnum(proc[k]) {
					add(s, 1, strconv.Itoa(k+1), s.Vals[0], "format", fmt.Sprintf("modifier %q is not two letters or digits", clip(proc[k])))
				}
			}
			if r, ok := new(big.Rat).SetString(s.Vals[1].Val); ok {
				sum.Add(&sum, r)
			}
			ptrs := s.Vals[6].Val
			if ptrs == "" {
				add(s, 7, "1", s.Vals[6], "required", "a service line points at one to four diagnoses")
			}
			for k, p := range strings.Split(ptrs, string(x12.Default.Component)) {
				if ptrs == "" {
					break
				}
				n, err := strconv.Atoi(p)
				if k >= 4 {
					add(s, 7, strconv.Itoa(k+1), s.Vals[6], "repeat", "more than four diagnosis pointers")
					break
				}
				if err != nil || n < 1 || n > diags {
					add(s, 7, strconv.Itoa(k+1), s.Vals[6], "pointer", fmt.Sprintf("diagnosis pointer %q does not name one of the claim's %d diagnoses", clip(p), diags))
				}
			}
		case "LX":
			if len(s.Vals) == 0 {
				add(s, 1, "", V{}, "required", "is required")
			} else if n, _ := strconv.Atoi(s.Vals[0].Val); n > MaxLines {
				add(s, 1, "", s.Vals[0], "repeat", fmt.Sprintf("more than %d service lines", MaxLines))
			}
		}
	}
	for _, l := range []string{"1000A", "1000B", "2000A", "2010AA", "2000B", "2010BA", "2010BB", "2300", "2400"} {
		if !loops[l] {
			out = append(out, Issue{Loop: l, Segment: "", Element: l, Code: "required", Message: "loop " + l + " is required"})
		}
	}
	for _, req := range requiredSegments {
		loop, seg, _ := strings.Cut(req, "/")
		if loops[loop] && !seen[req] && !(loop == "2010BA" && loops["2010CA"]) {
			out = append(out, Issue{Loop: loop, Segment: seg, Element: seg, Code: "required", Message: "segment " + seg + " is required in loop " + loop})
		}
	}
	if clm != nil {
		total, ok := new(big.Rat).SetString(clm.Vals[1].Val)
		if ok && total.Cmp(&sum) != 0 {
			add(*clm, 2, "", clm.Vals[1], "total", fmt.Sprintf("claim total %s is not the sum of its service lines' charges (%s)", clm.Vals[1].Val, sum.FloatString(2)))
		}
	}
	return out
}

func last(parts []string, n int) string {
	if len(parts) < n {
		return ""
	}
	return parts[n-1]
}

func required(v string) (string, string) {
	if strings.TrimSpace(v) == "" {
		return "required", "is required"
	}
	return "", ""
}

func maxLen(n int) check {
	return func(v string) (string, string) {
		if len(v) > n {
			return "length", fmt.Sprintf("is %d characters; the guide allows %d", len(v), n)
		}
		return "", ""
	}
}

func oneOf(what string, codes ...string) check {
	return func(v string) (string, string) {
		if v == "" {
			return "", ""
		}
		for _, c := range codes {
			if v == c {
				return "", ""
			}
		}
		return "code", fmt.Sprintf("%s %q is not one of %s", what, clip(v), strings.Join(codes, ", "))
	}
}

// ValidNPI reports whether s is a National Provider Identifier: ten
// digits whose last is the Luhn check digit over "80840" and the first
// nine (the NPI standard's card-issuer prefix).
func ValidNPI(s string) bool {
	if len(s) != 10 || !digits(s) {
		return false
	}
	sum := 24 // the prefix 80840's contribution, as the standard gives it
	for i := 8; i >= 0; i-- {
		d := int(s[i] - '0')
		if (8-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10-sum%10)%10 == int(s[9]-'0')
}

func npi(v string) (string, string) {
	if v == "" {
		return "", ""
	}
	if !ValidNPI(v) {
		return "npi", fmt.Sprintf("%q is not an NPI (ten digits with a valid check digit)", clip(v))
	}
	return "", ""
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func alnum(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

func phone(v string) (string, string) {
	if v != "" && (len(v) != 10 || !digits(v)) {
		return "format", "a phone number is ten digits"
	}
	return "", ""
}

func state(v string) (string, string) {
	if v != "" && (len(v) != 2 || !alnum(v)) {
		return "format", fmt.Sprintf("state %q is not a two-letter code", clip(v))
	}
	return "", ""
}

func zip(v string) (string, string) {
	if v != "" && ((len(v) != 5 && len(v) != 9) || !digits(v)) {
		return "format", fmt.Sprintf("ZIP code %q is not 5 or 9 digits", clip(v))
	}
	return "", ""
}

func zip9(v string) (string, string) {
	if v != "" && (len(v) != 9 || !digits(v)) {
		return "format", fmt.Sprintf("ZIP code %q must be 9 digits here (ZIP+4)", clip(v))
	}
	return "", ""
}

func notPOBox(v string) (string, string) {
	u := strings.ToUpper(strings.ReplaceAll(strings.ReplaceAll(v, ".", ""), " ", ""))
	if strings.HasPrefix(u, "POBOX") || strings.HasPrefix(u, "LOCKBOX") {
		return "format", "the billing provider's address is a street address, not a post office box"
	}
	return "", ""
}

func taxID(v string) (string, string) {
	if v != "" && (len(v) != 9 || !digits(v)) {
		return "format", "a tax id (EIN or SSN) is nine digits, no dashes"
	}
	return "", ""
}

func amount(v string) (string, string) {
	if v == "" {
		return "", ""
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok || r.Sign() < 0 || strings.ContainsAny(v, "eE/") {
		return "format", fmt.Sprintf("%q is not an amount", clip(v))
	}
	if i := strings.IndexByte(v, '.'); i >= 0 && len(v)-i-1 > 2 {
		return "format", fmt.Sprintf("%q has more than two decimals", clip(v))
	}
	return "", ""
}

func positive(v string) (string, string) {
	r, ok := new(big.Rat).SetString(v)
	if v != "" && (!ok || r.Sign() <= 0) {
		return "format", fmt.Sprintf("%q is not a positive number", clip(v))
	}
	return "", ""
}

func placeOfService(v string) (string, string) {
	if v != "" && (len(v) != 2 || !digits(v)) {
		return "code", fmt.Sprintf("place of service %q is not a two-digit CMS code", clip(v))
	}
	return "", ""
}

func parseDate(v string) (time.Time, bool) {
	if len(v) != 8 || !digits(v) {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", v)
	return t, err == nil && t.Year() >= 1900
}

func date(v string) (string, string) {
	if _, ok := parseDate(v); v != "" && !ok {
		return "date", fmt.Sprintf("%q is not a date (CCYYMMDD)", clip(v))
	}
	return "", ""
}

func pastDate(v string) (string, string) {
	t, ok := parseDate(v)
	if v != "" && !ok {
		return "date", fmt.Sprintf("%q is not a date (CCYYMMDD)", clip(v))
	}
	if ok && t.After(time.Now()) {
		return "date", "is in the future"
	}
	return "", ""
}

// serviceDate is D8 (CCYYMMDD) or RD8 (CCYYMMDD-CCYYMMDD, in order).
func serviceDate(v string) (string, string) {
	from, to, period := strings.Cut(v, "-")
	f, ok1 := parseDate(from)
	t, ok2 := parseDate(to)
	if !ok1 || period && !ok2 {
		return "date", fmt.Sprintf("%q is not a service date (CCYYMMDD or CCYYMMDD-CCYYMMDD)", clip(v))
	}
	if period && t.Before(f) {
		return "date", "the service period ends before it starts"
	}
	if f.After(time.Now()) {
		return "date", "the service date is in the future"
	}
	return "", ""
}

// icd10 checks an ICD-10-CM code's shape: a letter, a digit, then up to
// five letters or digits, no decimal point (the guide strips it).
func icd10(v string) (string, string) {
	if strings.Contains(v, ".") {
		return "format", fmt.Sprintf("ICD-10 code %q must be sent without its decimal point", clip(v))
	}
	if len(v) < 3 || len(v) > 7 || v[0] < 'A' || v[0] > 'Z' || v[1] < '0' || v[1] > '9' || !alnum(v) {
		return "code", fmt.Sprintf("%q is not an ICD-10-CM code", clip(v))
	}
	return "", ""
}

// procedure checks a CPT (five digits, or four and a letter for category
// II/III) or HCPCS level II (a letter and four digits) code.
func procedure(v string) (string, string) {
	if v == "" {
		return "required", "is required"
	}
	if len(v) != 5 || !alnum(v) || !(digits(v[:4]) || v[0] >= 'A' && v[0] <= 'Z' && digits(v[1:])) {
		return "code", fmt.Sprintf("%q is not a CPT or HCPCS code", clip(v))
	}
	return "", ""
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
