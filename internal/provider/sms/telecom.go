package sms

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MobileNumber finds the number to text in a Patient, RelatedPerson or
// Practitioner: the first telecom with system "sms", else the first
// "phone" with use "mobile", skipping entries whose period has ended. The
// number is given back in E.164 (+ and 8-15 digits); a ten-digit number is
// taken as North American (+1), as Oystehr's are. Errors say what is
// missing or wrong, for a 4xx.
func MobileNumber(content []byte) (string, error) {
	var r struct {
		Telecom []struct {
			System string `json:"system"`
			Value  string `json:"value"`
			Use    string `json:"use"`
			Period *struct {
				End string `json:"end"`
			} `json:"period"`
		} `json:"telecom"`
	}
	if err := json.Unmarshal(content, &r); err != nil {
		return "", fmt.Errorf("unreadable resource: %w", err)
	}
	var pick string
	for _, want := range []func(sys, use string) bool{
		func(sys, _ string) bool { return sys == "sms" },
		func(sys, use string) bool { return sys == "phone" && use == "mobile" },
	} {
		for _, t := range r.Telecom {
			if t.Period != nil && t.Period.End != "" {
				continue // an ended number may belong to someone else now
			}
			if want(t.System, t.Use) && t.Value != "" {
				pick = t.Value
				break
			}
		}
		if pick != "" {
			break
		}
	}
	if pick == "" {
		return "", errors.New("has no mobile number (a telecom with system sms, or system phone and use mobile)")
	}
	return E164(pick)
}

// E164 normalises a phone number: spaces, dots, dashes and parentheses
// go; what is left must be + and 8-15 digits, or ten digits (+1 added).
func E164(v string) (string, error) {
	d := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', '-', '(', ')':
			return -1
		}
		return r
	}, v)
	plus := strings.HasPrefix(d, "+")
	digits := strings.TrimPrefix(d, "+")
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("mobile number %q is not a phone number", clip(v))
		}
	}
	switch {
	case plus && len(digits) >= 8 && len(digits) <= 15 && digits[0] != '0':
		return "+" + digits, nil
	case !plus && len(digits) == 10:
		return "+1" + digits, nil
	case !plus && len(digits) == 11 && digits[0] == '1':
		return "+" + digits, nil
	}
	return "", fmt.Errorf("mobile number %q is not in international form (+ and country code, e.g. +15551234567)", clip(v))
}
