package iam

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// loginKeys are the failure counters one sign-in attempt touches: the
// account's, the client address's, and the pair's. addr is "" when the
// address is unknown (the pair then stands for "some unknown address").
type loginKeys struct {
	acct, pair, addr string
}

func newLoginKeys(account, ip string) loginKeys {
	a := addrKey(ip)
	k := loginKeys{acct: "acct:" + account, pair: "pair:" + a + "|" + account}
	if a != "" {
		k.addr = "addr:" + a
	}
	return k
}

// all is the keys in the order loginVerdict takes their counts.
func (k loginKeys) all() []string {
	if k.addr == "" {
		return []string{k.acct, k.pair}
	}
	return []string{k.acct, k.pair, k.addr}
}

// addrKey groups IPv6 addresses by /64, the block one client usually has
// (and can change addresses within at will). Anything unparsable is kept
// as it is: it still counts as one address.
func addrKey(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return strings.TrimSpace(ip)
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// loginVerdict is the throttle policy, a pure function of the failures
// counted before this attempt (windows of loginWindow). It returns how long
// the client must wait, or 0 to let the attempt check the password:
//
//   - one account from one address: refused after maxPairFailures, so a
//     guesser at one address gets a few guesses per window;
//   - one address over all accounts: refused after maxAddrFailures, so one
//     address cannot spray a common password across many accounts;
//   - one account over all addresses: after maxAccountFailures (guessing
//     from many addresses) only addresses that have not failed in the
//     window, on any account, may still try it.
//
// An address's failures never refuse another address, so nobody can lock a
// user out of their account from elsewhere: the user's own address stays
// clean unless the user mistyped or shares it with the attacker.
func loginVerdict(now time.Time, acct, pair store.FailureWindow, addr *store.FailureWindow) time.Duration {
	var wait time.Duration
	refuse := func(w store.FailureWindow) {
		wait = max(wait, w.Start.Add(loginWindow).Sub(now))
	}
	if pair.Count >= maxPairFailures {
		refuse(pair)
	}
	addrFailed := pair.Count > 0
	if addr != nil {
		if addr.Count >= maxAddrFailures {
			refuse(*addr)
		}
		addrFailed = addr.Count > 0
	}
	if acct.Count >= maxAccountFailures && addrFailed {
		refuse(acct)
	}
	return wait
}

// loginAttempt counts the attempt as a failure from its start (so parallel
// guesses, on any replica, cannot overrun a limit) and refuses it, taking
// the count back, when the policy says so. A database error refuses too:
// the throttle fails closed.
func (s *Service) loginAttempt(ctx context.Context, k loginKeys) error {
	now := s.now()
	w, err := s.store.CountLoginFailure(ctx, k.all(), now, loginWindow)
	if err != nil {
		return err
	}
	var addr *store.FailureWindow
	if len(w) == 3 {
		addr = &w[2]
	}
	wait := loginVerdict(now, w[0], w[1], addr)
	if wait <= 0 {
		return nil
	}
	// A refusal is not a failure: retrying while refused changes nothing.
	s.loginForgive(ctx, k)
	return fault.TooMany(wait, "too many failed sign-in attempts: try again in %s", humanWait(wait))
}

// loginSucceeded forgets the account's failures (from every address) and
// takes back the address's count for this attempt.
func (s *Service) loginSucceeded(ctx context.Context, k loginKeys) {
	if err := s.store.ClearLoginFailures(ctx, []string{k.acct, k.pair}); err != nil {
		s.log.WarnContext(ctx, "clear login failures", "err", err)
	}
	if k.addr != "" {
		if err := s.store.UncountLoginFailure(ctx, []string{k.addr}); err != nil {
			s.log.WarnContext(ctx, "uncount login failure", "err", err)
		}
	}
}

// loginForgive takes back an attempt that was refused or failed for a
// reason other than the credentials (a database error).
func (s *Service) loginForgive(ctx context.Context, k loginKeys) {
	if err := s.store.UncountLoginFailure(ctx, k.all()); err != nil {
		s.log.WarnContext(ctx, "uncount login failure", "err", err)
	}
}
