// Package provider holds the pattern every outside service of Ward follows
// (SMS, conversations, telemed, ...): one small interface per service in
// its own package (internal/provider/<service>), a local provider that
// needs nothing outside Ward (the default, for development and tests) and
// real ones (Twilio, LiveKit, ...).
//
// A project picks a provider per service in its settings (PATCH
// /v1/project {"providers": {"sms": "twilio"}}); a service it does not name
// uses "local". A provider's credentials are project secrets (the zambda
// secrets store, sealed at rest), read at each use so a rotation applies on
// the next call. Every outbound request goes through the egress policy.
// docs/providers.md describes each service and its providers.
package provider

import (
	"fmt"
	"sort"
)

// Local is the provider every service has and uses by default.
const Local = "local"

// known lists, per service, the providers this build has. A service's
// package adds its row here when it lands.
var known = map[string][]string{
	"sms":           {Local, "twilio"},
	"erx":           {Local},
	"fax":           {Local, "phaxio"},
	"payment":       {Local, "stripe"},
	"clearinghouse": {Local, "stedi"},
	// video: local is the server's LiveKit (its flags); livekit a
	// project's own (its secrets).
	"video": {Local, "livekit"},
}

// Valid reports an error naming the choices when service or name is not
// one this build knows.
func Valid(service, name string) error {
	names, ok := known[service]
	if !ok {
		svcs := make([]string, 0, len(known))
		for k := range known {
			svcs = append(svcs, k)
		}
		sort.Strings(svcs)
		return fmt.Errorf("providers: no service %q (services: %v)", service, svcs)
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("providers.%s: no provider %q (providers: %v)", service, name, names)
}

// Info is what messaging.getMessagingConfig reports of one service (the
// SDK's MessagingServiceInfo, plus which provider and whether its
// credentials are set).
type Info struct {
	Provider        string `json:"provider"`
	Configured      bool   `json:"configured"`
	PhoneNumber     string `json:"phoneNumber,omitempty"`
	PhoneNumberType string `json:"phoneNumberType,omitempty"`
	RateLimits      string `json:"rateLimits,omitempty"`
}
