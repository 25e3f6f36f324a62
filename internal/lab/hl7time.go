package lab

import (
	"strings"
	"time"
)

// hl7Time is an HL7 DTM in UTC, to the second.
func hl7Time(t time.Time) string { return t.UTC().Format("20060102150405") + "+0000" }

// parseFHIRTime reads a FHIR dateTime or date; fallback when absent or bad.
func parseFHIRTime(s string, fallback time.Time) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return fallback
}

// fhirTime turns an HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]) into
// a FHIR dateTime; ok is false for anything else. A time without a zone
// is taken as UTC (FHIR needs one).
func fhirTime(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", false
	}
	zone := ""
	if i := strings.IndexAny(v, "+-"); i >= 0 {
		v, zone = v[:i], v[i:]
		if len(zone) != 5 || !digits(zone[1:]) {
			return "", false
		}
		// An offset is hours (up to 14) and minutes (under 60): "+2700"
		// would be stored as a dateTime nothing can read.
		if h, m := atoi2(zone[1:3]), atoi2(zone[3:5]); h > 14 || m > 59 || h == 14 && m > 0 {
			return "", false
		}
	}
	frac := ""
	if i := strings.IndexByte(v, '.'); i >= 0 {
		v, frac = v[:i], v[i+1:]
		if frac == "" || len(frac) > 4 || !digits(frac) || len(v) != 14 {
			return "", false
		}
	}
	if !digits(v) {
		return "", false
	}
	var layout, out string
	switch len(v) {
	case 4:
		layout, out = "2006", v
	case 6:
		layout, out = "200601", v[:4]+"-"+v[4:]
	case 8:
		layout, out = "20060102", v[:4]+"-"+v[4:6]+"-"+v[6:]
	case 10, 12, 14:
		full := v + "0000"[:14-len(v)]
		t, err := time.Parse("20060102150405", full)
		if err != nil {
			return "", false
		}
		tz := "Z"
		if zone != "" {
			tz = zone[:3] + ":" + zone[3:]
			if zone == "+0000" || zone == "-0000" {
				tz = "Z"
			}
		}
		s := t.Format("2006-01-02T15:04:05")
		if frac != "" {
			s += "." + frac
		}
		return s + tz, true
	default:
		return "", false
	}
	if _, err := time.Parse(layout, v); err != nil {
		return "", false
	}
	return out, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// atoi2 reads two ASCII digits.
func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }
