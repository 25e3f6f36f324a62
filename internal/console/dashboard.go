package console

import (
	"errors"
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/activity"
)

// The dashboard: the project's last hour (GET /v1/project/metrics, behind
// Project:GetProjectInfo) as charts drawn here as SVG, with a title and a
// description each and the figures in a table, so the page needs no script
// and no style attribute (the CSP allows neither inline).

// chart geometry, in SVG user units (the SVG scales to the page's width).
const (
	chartW, chartH = 640, 180
	plotL, plotR   = 48, 8  // left margin (y labels), right margin
	plotT, plotB   = 10, 24 // top margin, bottom margin (time labels)
)

type chartRect struct{ X, Y, W, H float64 }

type chartSeries struct {
	Name  string
	Class string // "s1" or "s2": the stylesheet's colours
	Bars  []chartRect
	Lines []string // polyline points, one per run of minutes with data
}

// Shapes is the series' rects and polylines as SVG. Written here rather
// than by the template (a tenth of the page's time for hundreds of
// escaped attributes): they hold only numbers formatted by strconv and
// fixed element names, nothing to escape.
func (s chartSeries) Shapes() template.HTML {
	var b strings.Builder
	for _, r := range s.Bars {
		b.WriteString(`<rect x="`)
		b.WriteString(svgNum(r.X))
		b.WriteString(`" y="`)
		b.WriteString(svgNum(r.Y))
		b.WriteString(`" width="`)
		b.WriteString(svgNum(r.W))
		b.WriteString(`" height="`)
		b.WriteString(svgNum(r.H))
		b.WriteString(`"/>`)
	}
	for _, l := range s.Lines {
		b.WriteString(`<polyline points="`)
		b.WriteString(l)
		b.WriteString(`"/>`)
	}
	return template.HTML(b.String()) //nolint:gosec // numbers only, see above
}

type chartTick struct {
	X, Y  float64
	Label string
}

type chart struct {
	ID, Title, Desc string
	Label           string // the SVG's title: Title and the project
	Series          []chartSeries
	YTicks, XTicks  []chartTick
	Baseline        float64
	PlotL, PlotR    float64
}

type dashTile struct{ Label, Value, Note string }

type minuteRow struct {
	Time                                 string
	Requests, ClientErrors, ServerErrors int64
	P50, P99                             string
	Invocations, Failures                int64
	Deliveries, DeliveryFailures         int64
}

// tableRows writes the minute table's rows. Written here rather than by
// the template (half the page's time for 600 escaped cells): every cell is
// a number from strconv or text escaped here.
func tableRows(rows []minuteRow) template.HTML {
	var b strings.Builder
	cell := func(s string) {
		b.WriteString("<td>")
		b.WriteString(html.EscapeString(s))
		b.WriteString("</td>")
	}
	for _, r := range rows {
		b.WriteString(`<tr><td class="scope">`)
		b.WriteString(html.EscapeString(r.Time))
		b.WriteString("</td>")
		for _, n := range []int64{r.Requests, r.ClientErrors, r.ServerErrors} {
			cell(countText(n))
		}
		cell(r.P50)
		cell(r.P99)
		for _, n := range []int64{r.Invocations, r.Failures, r.Deliveries, r.DeliveryFailures} {
			cell(countText(n))
		}
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped text, see above
}

type dashboardPage struct {
	base
	Tiles   []dashTile
	Charts  []chart
	Rows    []minuteRow
	Counted string
	Error   string
	Since   string
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, sess session) error {
	page := dashboardPage{base: c.base(sess, "Dashboard", "dashboard")}
	var rep activity.Report
	err := c.call(r.Context(), sess, http.MethodGet, "/v1/project/metrics", nil, &rep)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status != http.StatusUnauthorized {
		// The landing page: it opens for every developer, saying why the
		// figures are missing (the API's refusal names the permission).
		page.Error = sentence(ae.Message)
		if ae.Status == http.StatusNotFound {
			page.Error = "This Ward server does not count project activity."
		}
		return c.render(w, http.StatusOK, "dashboard", page)
	}
	if err != nil {
		return err
	}
	fillDashboard(&page, rep)
	return c.render(w, http.StatusOK, "dashboard", page)
}

// fillDashboard turns a report into the page's tiles, charts and table.
func fillDashboard(page *dashboardPage, rep activity.Report) {
	t := rep.Totals
	errs := t.ClientErrors + t.ServerErrors
	page.Counted = rep.Counted
	if len(rep.Minutes) > 0 {
		page.Since = rep.Minutes[0].Start.UTC().Format("15:04")
	}
	page.Tiles = []dashTile{
		{"Requests", countText(t.Requests), ""},
		{"Errors", countText(errs), fmt.Sprintf("%s client (4xx), %s server (5xx)", countText(t.ClientErrors), countText(t.ServerErrors))},
		{"Latency p50", latencyText(t.P50Ms, t.Requests), ""},
		{"Latency p99", latencyText(t.P99Ms, t.Requests), ""},
		{"Zambda invocations", countText(t.Invocations), countText(t.InvocationFailures) + " failed"},
		{"Subscription deliveries", countText(t.Deliveries), countText(t.DeliveryFailures) + " failed attempts"},
		{"Delivery backlog", countText(rep.SubscriptionBacklog), "pending now"},
	}
	mins := rep.Minutes
	get := func(f func(activity.Figure) float64) []float64 {
		out := make([]float64, len(mins))
		for i, m := range mins {
			out[i] = f(m)
		}
		return out
	}
	has := get(func(m activity.Figure) float64 { return float64(m.Requests) })
	page.Charts = []chart{
		barChart("requests", "Requests per minute",
			fmt.Sprintf("%s requests and %s errors in the last hour; at most %s in one minute.", countText(t.Requests), countText(errs), countText(int64(maxValue(has)))),
			mins, []string{"Requests", "Errors (4xx and 5xx)"},
			has, get(func(m activity.Figure) float64 { return float64(m.ClientErrors + m.ServerErrors) })),
		lineChart("latency", "Latency per minute (ms)",
			fmt.Sprintf("Over the hour, half the requests took at most %s and 99%% at most %s.", latencyText(t.P50Ms, t.Requests), latencyText(t.P99Ms, t.Requests)),
			mins, has, []string{"p50", "p99"},
			get(func(m activity.Figure) float64 { return m.P50Ms }), get(func(m activity.Figure) float64 { return m.P99Ms })),
		barChart("zambdas", "Zambda invocations per minute",
			fmt.Sprintf("%s invocations, %s of them failed, in the last hour.", countText(t.Invocations), countText(t.InvocationFailures)),
			mins, []string{"Invocations", "Failures"},
			get(func(m activity.Figure) float64 { return float64(m.Invocations) }),
			get(func(m activity.Figure) float64 { return float64(m.InvocationFailures) })),
		barChart("deliveries", "Subscription delivery attempts per minute",
			fmt.Sprintf("%s delivery attempts, %s of them failed, in the last hour; %s deliveries pending now.",
				countText(t.Deliveries), countText(t.DeliveryFailures), countText(rep.SubscriptionBacklog)),
			mins, []string{"Attempts", "Failed attempts"},
			get(func(m activity.Figure) float64 { return float64(m.Deliveries) }),
			get(func(m activity.Figure) float64 { return float64(m.DeliveryFailures) })),
	}
	for i := range page.Charts {
		page.Charts[i].Label = page.Charts[i].Title + ", project " + xmlText(page.Project)
	}
	for i := len(mins) - 1; i >= 0; i-- { // newest first
		m := mins[i]
		if m.Requests == 0 && m.Invocations == 0 && m.Deliveries == 0 {
			continue
		}
		page.Rows = append(page.Rows, minuteRow{Time: m.Start.UTC().Format("15:04"), Requests: m.Requests,
			ClientErrors: m.ClientErrors, ServerErrors: m.ServerErrors, P50: latencyText(m.P50Ms, m.Requests), P99: latencyText(m.P99Ms, m.Requests),
			Invocations: m.Invocations, Failures: m.InvocationFailures, Deliveries: m.Deliveries, DeliveryFailures: m.DeliveryFailures})
	}
}

func countText(n int64) string { return strconv.FormatInt(n, 10) }

// ms writes a latency; "-" when no request was timed.
func latencyText(v float64, n int64) string {
	if n == 0 {
		return "-"
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + " ms"
}

func maxValue(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
func chartTop(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 5, 10} {
		if v <= f*p {
			return f * p
		}
	}
	return 10 * p
}

// frame is the axes of a chart of len(mins) minutes up to top.
func chartFrame(id, title, desc string, mins []activity.Figure, top float64) chart {
	ch := chart{ID: id, Title: title, Desc: desc, Baseline: chartH - plotB, PlotL: plotL, PlotR: chartW - plotR}
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		ch.YTicks = append(ch.YTicks, chartTick{X: plotL - 6, Y: chartY(v, top) + 4, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	n := len(mins)
	for i := 0; i < n; i += 15 {
		ch.XTicks = append(ch.XTicks, chartTick{X: chartX(i, n), Y: chartH - 6, Label: mins[i].Start.UTC().Format("15:04")})
	}
	return ch
}

func chartX(i, n int) float64 {
	return plotL + float64(i)*(chartW-plotL-plotR)/float64(max(n, 1))
}

func chartY(v, top float64) float64 {
	return chartH - plotB - v/top*(chartH-plotT-plotB)
}

// barChart draws each series as bars, the second over the first (errors
// over requests: a part of them).
func barChart(id, title, desc string, mins []activity.Figure, names []string, values ...[]float64) chart {
	top := chartTop(maxValue(values[0]))
	ch := chartFrame(id, title, desc, mins, top)
	slot := (chartW - plotL - plotR) / float64(max(len(mins), 1))
	for si, vs := range values {
		s := chartSeries{Name: names[si], Class: "s" + strconv.Itoa(si+1)}
		for i, v := range vs {
			if v <= 0 {
				continue
			}
			yy := chartY(min(v, top), top)
			s.Bars = append(s.Bars, chartRect{X: round1(chartX(i, len(mins)) + 1), Y: round1(yy), W: round1(max(slot-2, 1)), H: round1(ch.Baseline - yy)})
		}
		ch.Series = append(ch.Series, s)
	}
	return ch
}

// lineChart draws each series as lines through the minutes where has is
// non-zero (a minute without requests has no latency: a gap).
func lineChart(id, title, desc string, mins []activity.Figure, has []float64, names []string, values ...[]float64) chart {
	top := 1.0
	for _, vs := range values {
		top = max(top, maxValue(vs))
	}
	top = chartTop(top)
	ch := chartFrame(id, title, desc, mins, top)
	slot := (chartW - plotL - plotR) / float64(max(len(mins), 1))
	for si, vs := range values {
		s := chartSeries{Name: names[si], Class: "s" + strconv.Itoa(si+1)}
		var run []string
		flush := func() {
			if len(run) == 1 { // one point: a short flat line, so it shows
				p := run[0]
				xs, ys, _ := strings.Cut(p, ",")
				xv, _ := strconv.ParseFloat(xs, 64)
				run = append(run, fmt.Sprintf("%s,%s", svgNum(xv+slot/2), ys))
			}
			if len(run) > 0 {
				s.Lines = append(s.Lines, strings.Join(run, " "))
			}
			run = nil
		}
		for i, v := range vs {
			if has[i] <= 0 {
				flush()
				continue
			}
			run = append(run, svgNum(chartX(i, len(mins))+slot/2)+","+svgNum(chartY(min(v, top), top)))
		}
		flush()
		ch.Series = append(ch.Series, s)
	}
	return ch
}

// xmlText drops what XML cannot hold (invalid UTF-8, control characters
// but tab and newlines) from text put in an SVG: HTML tolerates them, an
// SVG read as XML does not.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func svgNum(v float64) string { return strconv.FormatFloat(round1(v), 'f', -1, 64) }
