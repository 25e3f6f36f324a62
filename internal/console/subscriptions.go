package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fhir/schema"
)

// Subscriptions: the project's Subscription resources (status, criteria,
// endpoint), one subscription's delivery log from $events (each delivery
// with its attempts: time, HTTP status, error) and the replay button
// ($replay: every failed delivery, or all from an event sequence number).

type subscriptionRow struct {
	ID, Status, Criteria, Endpoint, Error string
}

func subscriptionOf(res map[string]any) subscriptionRow {
	row := subscriptionRow{}
	row.ID, _ = res["id"].(string)
	row.Status, _ = res["status"].(string)
	row.Criteria, _ = res["criteria"].(string)
	row.Error, _ = res["error"].(string)
	if ch, ok := res["channel"].(map[string]any); ok {
		row.Endpoint, _ = ch["endpoint"].(string)
	}
	return row
}

type subscriptionsPage struct {
	base
	Rows       []subscriptionRow
	Next, Prev string
	CanCreate  bool
}

func (c *Console) subscriptionsPage(w http.ResponseWriter, r *http.Request, sess session) error {
	if c.cfg.FHIRPath == "" {
		return c.message(w, http.StatusNotFound, "Not found", "This Ward has no FHIR API.")
	}
	ctx := r.Context()
	q, err := searchQuery(r.URL.Query().Get("q"))
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Message: "the page link is not a query string"}
	}
	var bundle struct {
		Link []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := c.fhirGet(ctx, sess, "/Subscription?"+q.Encode(), &bundle); err != nil {
		return err
	}
	page := subscriptionsPage{base: c.base(sess, "Subscriptions", "subscriptions"),
		CanCreate: c.can(ctx, sess, "FHIR:Create", "FHIR:Subscription:*")}
	for _, e := range bundle.Entry {
		if e.Resource != nil {
			page.Rows = append(page.Rows, subscriptionOf(e.Resource))
		}
	}
	for _, l := range bundle.Link {
		if u, err := url.Parse(l.URL); err == nil {
			link := "/console/subscriptions?" + url.Values{"q": {u.RawQuery}}.Encode()
			switch l.Relation {
			case "next":
				page.Next = link
			case "previous", "prev":
				page.Prev = link
			}
		}
	}
	return c.render(w, http.StatusOK, "subscriptions", page)
}

type delivery struct {
	ID, EventSeq, Resource, Interaction, Status, Created, Delivered, Next, LastError string
	ResourceLink                                                                     string // its console page, "" when it names none
	Attempts                                                                         []attempt
}

type attempt struct {
	At, Duration, HTTPStatus, Error string
	Stale                           bool
}

type subscriptionPage struct {
	base
	Sub        subscriptionRow
	Counts     []count
	Deliveries []delivery
	CanReplay  bool
	From       string
	Requeued   *int64
	Resumed    bool
	Error      string
}

type count struct {
	Name  string
	Value int64
}

// param is one Parameters entry of $events.
type param struct {
	Name         string                      `json:"name"`
	ValueString  *string                     `json:"valueString"`
	ValueCode    *string                     `json:"valueCode"`
	ValueInteger *int64                      `json:"valueInteger"`
	ValueInstant *string                     `json:"valueInstant"`
	ValueBoolean *bool                       `json:"valueBoolean"`
	ValueRef     *struct{ Reference string } `json:"valueReference"`
	Part         []param                     `json:"part"`
}

// text is a parameter's value as text.
func (p param) text() string {
	switch {
	case p.ValueString != nil:
		return *p.ValueString
	case p.ValueCode != nil:
		return *p.ValueCode
	case p.ValueInteger != nil:
		return strconv.FormatInt(*p.ValueInteger, 10)
	case p.ValueInstant != nil:
		return *p.ValueInstant
	case p.ValueRef != nil:
		return p.ValueRef.Reference
	}
	return ""
}

func (c *Console) loadSubscription(r *http.Request, sess session, id string) (subscriptionPage, error) {
	ctx := r.Context()
	var res map[string]any
	if err := c.fhirGet(ctx, sess, "/Subscription/"+id, &res); err != nil {
		return subscriptionPage{}, err
	}
	page := subscriptionPage{base: c.base(sess, "Subscription "+id, "subscriptions"), Sub: subscriptionOf(res),
		CanReplay: c.can(ctx, sess, "FHIR:Update", "FHIR:Subscription:"+id)}
	var events struct {
		Parameter []param `json:"parameter"`
	}
	if err := c.fhirGet(ctx, sess, "/Subscription/"+id+"/$events?_count=50", &events); err != nil {
		return subscriptionPage{}, err
	}
	for _, p := range events.Parameter {
		switch p.Name {
		case "counts":
			for _, part := range p.Part {
				if part.ValueInteger != nil {
					page.Counts = append(page.Counts, count{part.Name, *part.ValueInteger})
				}
			}
		case "delivery":
			page.Deliveries = append(page.Deliveries, deliveryOf(p.Part))
		}
	}
	return page, nil
}

func deliveryOf(parts []param) delivery {
	var d delivery
	for _, p := range parts {
		switch p.Name {
		case "id":
			d.ID = p.text()
		case "eventSeq":
			d.EventSeq = p.text()
		case "resource":
			d.Resource = p.text()
			// "Type/id/_history/n": the version's history page.
			if parts := strings.Split(d.Resource, "/"); len(parts) == 4 && schema.IsResourceType(parts[0]) && fhirID.MatchString(parts[1]) {
				d.ResourceLink = "/console/fhir/" + parts[0] + "/" + parts[1] + "/_history"
			}
		case "interaction":
			d.Interaction = p.text()
		case "status":
			d.Status = p.text()
		case "createdAt":
			d.Created = p.text()
		case "deliveredAt":
			d.Delivered = p.text()
		case "nextAttemptAt":
			d.Next = p.text()
		case "lastError":
			d.LastError = p.text()
		case "attempt":
			var a attempt
			for _, ap := range p.Part {
				switch ap.Name {
				case "at":
					a.At = ap.text()
				case "durationMs":
					a.Duration = ap.text() + " ms"
				case "httpStatus":
					a.HTTPStatus = ap.text()
				case "error":
					a.Error = ap.text()
				case "stale":
					a.Stale = ap.ValueBoolean != nil && *ap.ValueBoolean
				}
			}
			d.Attempts = append(d.Attempts, a)
		}
	}
	return d
}

func (c *Console) subscriptionPage(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	if c.cfg.FHIRPath == "" || !fhirID.MatchString(id) {
		return c.message(w, http.StatusNotFound, "Not found", "There is no such subscription.")
	}
	page, err := c.loadSubscription(r, sess, id)
	if err != nil {
		return err
	}
	page.Resumed = r.URL.Query().Get("resumed") == "1"
	if v := r.URL.Query().Get("requeued"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			page.Requeued = &n
		}
	}
	return c.render(w, http.StatusOK, "subscription", page)
}

func (c *Console) replaySubscription(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	if c.cfg.FHIRPath == "" || !fhirID.MatchString(id) {
		return c.message(w, http.StatusNotFound, "Not found", "There is no such subscription.")
	}
	from := strings.TrimSpace(r.PostForm.Get("from"))
	path := "/Subscription/" + id + "/$replay"
	if from != "" {
		path += "?" + url.Values{"from": {from}}.Encode()
	}
	status, b, err := c.fhir(r.Context(), sess, http.MethodPost, path, nil)
	if err != nil {
		return err
	}
	if status < 300 {
		var out struct {
			Parameter []param `json:"parameter"`
		}
		var n int64
		if json.Unmarshal(b, &out) == nil && len(out.Parameter) == 1 && out.Parameter[0].ValueInteger != nil {
			n = *out.Parameter[0].ValueInteger
		}
		return seeOther(w, r, fmt.Sprintf("/console/subscriptions/%s?requeued=%d", id, n))
	}
	ae := fhirErr(status, b)
	page, lerr := c.loadSubscription(r, sess, id)
	if lerr != nil {
		return lerr
	}
	page.From, page.Error = from, sentence(ae.Message)
	if !page.CanReplay {
		page.From = ""
	}
	return c.render(w, ae.Status, "subscription", page)
}

// resumeSubscription sets an errored (or off) subscription back to
// "requested", as the API's own error text asks: its kept events are then
// delivered. It is an update of the resource at the version read (If-Match).
func (c *Console) resumeSubscription(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	if c.cfg.FHIRPath == "" || !fhirID.MatchString(id) {
		return c.message(w, http.StatusNotFound, "Not found", "There is no such subscription.")
	}
	ctx := r.Context()
	var res map[string]any
	if err := c.fhirGet(ctx, sess, "/Subscription/"+id, &res); err != nil {
		return err
	}
	res["status"] = "requested"
	delete(res, "error")
	body, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("console: resume: %w", err)
	}
	h := http.Header{"If-Match": {`W/"` + rowOf(res).Version + `"`}}
	status, b, err := c.fhirWith(ctx, sess, http.MethodPut, "/Subscription/"+id, body, h)
	if err != nil {
		return err
	}
	if status < 300 {
		return seeOther(w, r, "/console/subscriptions/"+id+"?resumed=1")
	}
	ae := fhirErr(status, b)
	page, lerr := c.loadSubscription(r, sess, id)
	if lerr != nil {
		return lerr
	}
	page.Error = sentence(ae.Message)
	return c.render(w, ae.Status, "subscription", page)
}
