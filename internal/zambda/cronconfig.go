package zambda

import (
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/zambda/schedule"
)

// Schedule is a cron zambda's schedule: the SDK's ZambdaSchedule, with the
// expression in EventBridge syntax.
type Schedule struct {
	Expression  string       `json:"expression"`
	Start       *time.Time   `json:"start,omitempty"`
	End         *time.Time   `json:"end,omitempty"`
	RetryPolicy *RetryPolicy `json:"retryPolicy,omitempty"`
}

// RetryPolicy bounds re-runs of a failed tick, under the SDK's names.
type RetryPolicy struct {
	MaximumRetry    *int `json:"maximumRetry,omitempty"`    // re-runs after the first run
	MaximumEventAge *int `json:"maximumEventAge,omitempty"` // seconds after the tick in which a re-run may start
}

// The bounds of EventBridge Scheduler's retry policy, which Oystehr's cron
// zambdas run on.
const (
	maxRetryLimit            = 185
	minEventAge, maxEventAge = 60, 86400
)

// retryAliases maps EventBridge's names, which Ward read before it spoke
// the SDK's, to the SDK's.
var retryAliases = map[string]string{"maximumRetryAttempts": "maximumRetry", "maximumEventAgeInSeconds": "maximumEventAge"}

// UnmarshalJSON reads a stored policy under either set of names: rows
// written before the SDK's names were used hold EventBridge's.
func (p *RetryPolicy) UnmarshalJSON(b []byte) error {
	var v struct {
		MaximumRetry             *int `json:"maximumRetry"`
		MaximumRetryAttempts     *int `json:"maximumRetryAttempts"`
		MaximumEventAge          *int `json:"maximumEventAge"`
		MaximumEventAgeInSeconds *int `json:"maximumEventAgeInSeconds"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = RetryPolicy{MaximumRetry: v.MaximumRetry, MaximumEventAge: v.MaximumEventAge}
	if p.MaximumRetry == nil {
		p.MaximumRetry = v.MaximumRetryAttempts
	}
	if p.MaximumEventAge == nil {
		p.MaximumEventAge = v.MaximumEventAgeInSeconds
	}
	return nil
}

// parseSchedule reads a schedule from a create or update request. Unknown
// fields are refused rather than dropped, so a misspelt setting is not
// silently ignored.
func parseSchedule(raw json.RawMessage) (Schedule, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return Schedule{}, fault.Invalid("schedule must be an object {expression, start?, end?, retryPolicy?}")
	}
	var sc Schedule
	for _, k := range sortedKeys(fields) {
		v := fields[k]
		switch k {
		case "expression":
			if json.Unmarshal(v, &sc.Expression) != nil {
				return Schedule{}, fault.Invalid("schedule.expression must be a string")
			}
		case "start", "end":
			var t *time.Time
			if json.Unmarshal(v, &t) != nil {
				return Schedule{}, fault.Invalid("schedule.%s must be a date and time such as 2025-01-31T09:00:00Z", k)
			}
			if k == "start" {
				sc.Start = t
			} else {
				sc.End = t
			}
		case "retryPolicy":
			if string(v) == "null" {
				continue // no policy
			}
			p, err := parseRetryPolicy(v)
			if err != nil {
				return Schedule{}, err
			}
			sc.RetryPolicy = &p
		default:
			return Schedule{}, fault.Invalid("schedule: unknown field %q; a schedule has expression, start, end and retryPolicy", clip(k))
		}
	}
	if _, err := schedule.Parse(sc.Expression); err != nil {
		return Schedule{}, fault.Invalid("schedule.expression: %v", err)
	}
	if sc.Start != nil && sc.End != nil && !sc.End.After(*sc.Start) {
		return Schedule{}, fault.Invalid("schedule.end must be after schedule.start")
	}
	return sc, nil
}

// parseRetryPolicy reads schedule.retryPolicy under the SDK's names or
// EventBridge's; a null setting is an absent one.
func parseRetryPolicy(raw json.RawMessage) (RetryPolicy, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return RetryPolicy{}, fault.Invalid("schedule.retryPolicy must be an object {maximumRetry?, maximumEventAge?}")
	}
	var p RetryPolicy
	given := map[string]string{} // the SDK's name -> the name used
	for _, k := range sortedKeys(fields) {
		name := k
		if sdk, ok := retryAliases[k]; ok {
			name = sdk
		}
		var dst **int
		lo, hi := 0, 0
		switch name {
		case "maximumRetry":
			dst, lo, hi = &p.MaximumRetry, 0, maxRetryLimit
		case "maximumEventAge":
			dst, lo, hi = &p.MaximumEventAge, minEventAge, maxEventAge
		default:
			return RetryPolicy{}, fault.Invalid("schedule.retryPolicy: unknown field %q; a retry policy has maximumRetry and maximumEventAge", clip(k))
		}
		if prev, ok := given[name]; ok {
			return RetryPolicy{}, fault.Invalid("schedule.retryPolicy: %s and %s are the same setting; give one", prev, k)
		}
		given[name] = k
		if string(fields[k]) == "null" {
			continue
		}
		var f float64
		if json.Unmarshal(fields[k], &f) != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return RetryPolicy{}, fault.Invalid("schedule.retryPolicy.%s must be a whole number from %d to %d, not %s", k, lo, hi, clip(string(fields[k])))
		}
		n := int(f)
		*dst = &n
	}
	return p, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
