package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Address is a route's primary address (the SDK's shape).
type Address struct {
	Address1          string `json:"address1"`
	Address2          string `json:"address2,omitempty"`
	City              string `json:"city"`
	StateProvinceCode string `json:"stateProvinceCode"`
	PostalCode        string `json:"postalCode"`
}

// Route is the SDK's LabRoute plus Ward's mllpAddress.
type Route struct {
	RouteGUID                 string   `json:"routeGuid"`
	AccountNumber             string   `json:"accountNumber"`
	LabGUID                   string   `json:"labGuid"`
	LabName                   string   `json:"labName,omitempty"`
	PrimaryName               string   `json:"primaryName,omitempty"`
	PrimaryAddress            *Address `json:"primaryAddress,omitempty"`
	PrimaryPhone              string   `json:"primaryPhone,omitempty"`
	ClientSiteID              string   `json:"clientSiteId,omitempty"`
	EulaVersion               string   `json:"eulaVersion,omitempty"`
	EulaAccepterFullName      string   `json:"eulaAccepterFullName,omitempty"`
	EulaAcceptanceDateTimeUtc *string  `json:"eulaAcceptanceDateTimeUtc,omitempty"`
	// MLLPAddress is where orders go, host:port (Ward's field).
	MLLPAddress string `json:"mllpAddress"`
}

// Created is routeCreate's answer: the SDK's routeGuid, plus the secret the
// lab's results must carry in MSH-8, shown this once.
type Created struct {
	RouteGUID    string `json:"routeGuid"`
	ResultSecret string `json:"resultSecret"`
}

// maxField bounds a route's text fields (they go into HL7 fields).
const maxField = 200

// CreateRoute stores a route for the project. The MLLP address must be a
// host:port; an address (or a name resolving now to one) the egress policy
// refuses is a 400 naming the rule, checked again at every dial.
func (s *Service) CreateRoute(ctx context.Context, projectID string, body []byte) (Created, error) {
	var in Route
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&in); err != nil {
		return Created{}, fault.Invalid("the body must be a route: %v", err)
	}
	if in.AccountNumber == "" || in.LabGUID == "" || in.MLLPAddress == "" {
		return Created{}, fault.Invalid("accountNumber, labGuid and mllpAddress are required")
	}
	for name, v := range map[string]string{"accountNumber": in.AccountNumber, "labGuid": in.LabGUID, "labName": in.LabName,
		"primaryName": in.PrimaryName, "primaryPhone": in.PrimaryPhone, "clientSiteId": in.ClientSiteID} {
		if len(v) > maxField || strings.ContainsAny(v, "\r\n\x0b\x1c") {
			return Created{}, fault.Invalid("%s must be at most %d characters on one line", name, maxField)
		}
	}
	if err := s.checkAddress(ctx, in.MLLPAddress); err != nil {
		return Created{}, err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return Created{}, fmt.Errorf("route secret: %w", err)
	}
	in.RouteGUID = uuid.NewString()
	c := Created{RouteGUID: in.RouteGUID, ResultSecret: base64.RawURLEncoding.EncodeToString(secret)}
	details, err := json.Marshal(in)
	if err != nil {
		return Created{}, err
	}
	err = s.store.CreateLabRoute(ctx, store.LabRoute{ProjectID: projectID, RouteGUID: in.RouteGUID, LabGUID: in.LabGUID,
		AccountNumber: in.AccountNumber, MLLPAddress: in.MLLPAddress, SecretHash: secretHash(c.ResultSecret),
		Details: details, CreatedAt: s.now()})
	if err != nil {
		return Created{}, err
	}
	return c, nil
}

func secretHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// checkAddress: host:port with a port, and not refused by the egress
// policy where the host is (or resolves now to) an address.
func (s *Service) checkAddress(ctx context.Context, hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return fault.Invalid("mllpAddress must be host:port, not %q", hostport)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fault.Invalid("mllpAddress %q has an invalid port", hostport)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		// A name that does not resolve now may later: the dial decides.
		ips, _ := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		addrs = ips
	}
	for _, a := range addrs {
		if err := s.egress.Check(netip.AddrPortFrom(a.Unmap(), uint16(n))); err != nil {
			return fault.Wrap(fault.ErrInvalid, err, "mllpAddress: %v", err)
		}
	}
	return nil
}

func routeOf(r store.LabRoute) (Route, error) {
	var out Route
	if err := json.Unmarshal(r.Details, &out); err != nil {
		return Route{}, fmt.Errorf("stored lab route %s: %w", r.RouteGUID, err)
	}
	out.RouteGUID, out.LabGUID, out.AccountNumber, out.MLLPAddress = r.RouteGUID, r.LabGUID, r.AccountNumber, r.MLLPAddress
	return out, nil
}

// ListRoutes lists the project's routes (empty, not null, when none).
func (s *Service) ListRoutes(ctx context.Context, projectID string) ([]Route, error) {
	rows, err := s.store.ListLabRoutes(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(rows))
	for _, r := range rows {
		rt, err := routeOf(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// GetRoute returns the project's route; another project's is a 404.
func (s *Service) GetRoute(ctx context.Context, projectID, guid string) (Route, error) {
	r, err := s.store.GetLabRoute(ctx, projectID, guid)
	if errors.Is(err, store.ErrNotFound) {
		return Route{}, fault.NotFound("no lab route %q", guid)
	}
	if err != nil {
		return Route{}, err
	}
	return routeOf(r)
}

// DeleteRoute removes the project's route. The SDK also sends the route's
// accountNumber and labGuid: when given they must be the route's.
func (s *Service) DeleteRoute(ctx context.Context, projectID, guid string, body []byte) error {
	rt, err := s.GetRoute(ctx, projectID, guid)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		var in struct {
			AccountNumber string `json:"accountNumber"`
			LabGUID       string `json:"labGuid"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return fault.Invalid("the body must be {accountNumber, labGuid}: %v", err)
		}
		if in.AccountNumber != "" && in.AccountNumber != rt.AccountNumber || in.LabGUID != "" && in.LabGUID != rt.LabGUID {
			return fault.Invalid("accountNumber and labGuid must be the route's")
		}
	}
	err = s.store.DeleteLabRoute(ctx, projectID, guid)
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFound("no lab route %q", guid)
	}
	return err
}
