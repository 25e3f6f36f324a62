package zambda

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// The three logStream endpoints answer in CloudWatch's shapes, times in
// epoch milliseconds, with opaque paging tokens.

// StreamsInput pages the stream list.
type StreamsInput struct {
	Token string `json:"token"`
}

// StreamInfo is one log stream.
type StreamInfo struct {
	LogStreamName       string `json:"logStreamName"`
	FirstEventTimestamp int64  `json:"firstEventTimestamp"`
	LastEventTimestamp  int64  `json:"lastEventTimestamp"`
	CreationTime        int64  `json:"creationTime"`
	LastIngestionTime   int64  `json:"lastIngestionTime"`
}

// StreamsPage is the list answer.
type StreamsPage struct {
	LogStreams []StreamInfo `json:"logStreams"`
	NextToken  string       `json:"nextToken,omitempty"`
}

// LogEvent is one line.
type LogEvent struct {
	Message       string `json:"message"`
	Timestamp     int64  `json:"timestamp"`
	IngestionTime int64  `json:"ingestionTime"`
	LogStreamName string `json:"logStreamName,omitempty"`
}

// SearchInput filters lines across streams.
type SearchInput struct {
	Filter    string `json:"filter"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	NextToken string `json:"nextToken"`
}

// SearchPage is the search answer.
type SearchPage struct {
	LogEvents []LogEvent `json:"logEvents"`
	NextToken string     `json:"nextToken,omitempty"`
}

// StreamInput pages one stream.
type StreamInput struct {
	NextToken string `json:"nextToken"`
}

// StreamPage is one stream's lines.
type StreamPage struct {
	LogEvents         []LogEvent `json:"logEvents"`
	NextForwardToken  string     `json:"nextForwardToken,omitempty"`
	NextBackwardToken string     `json:"nextBackwardToken,omitempty"`
}

const (
	streamsPage = 50
	eventsPage  = 500
	scanLimit   = 10000 // lines a filter looks through per call
)

func (s *Service) zambdaID(ctx context.Context, projectID, idOrName string) (string, error) {
	z, err := s.st.GetZambda(ctx, projectID, idOrName)
	if err != nil {
		return "", notFound(err, idOrName)
	}
	return z.ID, nil
}

// LogStreams lists a function's log streams, newest first.
func (s *Service) LogStreams(ctx context.Context, projectID, idOrName string, in StreamsInput) (StreamsPage, error) {
	id, err := s.zambdaID(ctx, projectID, idOrName)
	if err != nil {
		return StreamsPage{}, err
	}
	after := ""
	if in.Token != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.Token)
		if err != nil {
			return StreamsPage{}, fault.Invalid("token is not one this API returned")
		}
		after = string(b)
	}
	list, err := s.st.LogStreams(ctx, projectID, id, after, streamsPage+1)
	if err != nil {
		return StreamsPage{}, err
	}
	page := StreamsPage{LogStreams: []StreamInfo{}}
	for i, ls := range list {
		if i == streamsPage {
			page.NextToken = base64.RawURLEncoding.EncodeToString([]byte(list[i-1].Name))
			break
		}
		page.LogStreams = append(page.LogStreams, StreamInfo{LogStreamName: ls.Name, FirstEventTimestamp: ls.First.UnixMilli(),
			LastEventTimestamp: ls.Last.UnixMilli(), CreationTime: ls.First.UnixMilli(), LastIngestionTime: ls.LastIngestion.UnixMilli()})
	}
	return page, nil
}

func events(lines []store.LogLine, withStream bool) []LogEvent {
	out := make([]LogEvent, 0, len(lines))
	for _, l := range lines {
		e := LogEvent{Message: l.Message, Timestamp: l.At.UnixMilli(), IngestionTime: l.IngestedAt.UnixMilli()}
		if withStream {
			e.LogStreamName = l.Stream
		}
		out = append(out, e)
	}
	return out
}

func seqToken(prefix string, seq int64) string { return prefix + strconv.FormatInt(seq, 10) }

func parseSeq(token, prefix string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(token, prefix), 10, 64)
	if err != nil || !strings.HasPrefix(token, prefix) {
		return 0, fault.Invalid("nextToken is not one this API returned")
	}
	return n, nil
}

// SearchLogs returns lines of every stream matching a CloudWatch-style
// filter pattern, oldest first.
func (s *Service) SearchLogs(ctx context.Context, projectID, idOrName string, in SearchInput) (SearchPage, error) {
	id, err := s.zambdaID(ctx, projectID, idOrName)
	if err != nil {
		return SearchPage{}, err
	}
	m, err := parseFilter(in.Filter)
	if err != nil {
		return SearchPage{}, err
	}
	q := store.LogQuery{Limit: scanLimit}
	if in.Start > 0 {
		q.From = time.UnixMilli(in.Start)
	}
	if in.End > 0 {
		q.To = time.UnixMilli(in.End)
	}
	if in.NextToken != "" {
		if q.AfterSeq, err = parseSeq(in.NextToken, "s/"); err != nil {
			return SearchPage{}, err
		}
	}
	lines, err := s.st.Logs(ctx, projectID, id, q)
	if err != nil {
		return SearchPage{}, err
	}
	var hits []store.LogLine
	page := SearchPage{}
	for _, l := range lines {
		if !m.match(l.Message) {
			continue
		}
		if len(hits) == eventsPage {
			page.NextToken = seqToken("s/", hits[len(hits)-1].Seq)
			break
		}
		hits = append(hits, l)
	}
	if page.NextToken == "" && len(lines) == scanLimit {
		// This call looked at as many lines as it may: go on from there.
		page.NextToken = seqToken("s/", lines[len(lines)-1].Seq)
	}
	page.LogEvents = events(hits, true)
	return page, nil
}

// LogStream returns one stream's lines, oldest first, a page at a time.
// The forward token stays valid at the end of the stream, so polling it
// returns new lines as they arrive (as CloudWatch's does).
func (s *Service) LogStream(ctx context.Context, projectID, idOrName, stream string, in StreamInput) (StreamPage, error) {
	id, err := s.zambdaID(ctx, projectID, idOrName)
	if err != nil {
		return StreamPage{}, err
	}
	q := store.LogQuery{Stream: stream, Limit: eventsPage}
	if in.NextToken != "" {
		if strings.HasPrefix(in.NextToken, "b/") {
			q.Backward = true
			q.AfterSeq, err = parseSeq(in.NextToken, "b/")
		} else {
			q.AfterSeq, err = parseSeq(in.NextToken, "f/")
		}
		if err != nil {
			return StreamPage{}, err
		}
	}
	lines, err := s.st.Logs(ctx, projectID, id, q)
	if err != nil {
		return StreamPage{}, err
	}
	if q.Backward {
		for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
			lines[i], lines[j] = lines[j], lines[i]
		}
	}
	page := StreamPage{LogEvents: events(lines, false)}
	switch {
	case len(lines) > 0:
		page.NextForwardToken = seqToken("f/", lines[len(lines)-1].Seq)
		page.NextBackwardToken = seqToken("b/", lines[0].Seq)
	default:
		page.NextForwardToken = in.NextToken
		if page.NextForwardToken == "" {
			page.NextForwardToken = "f/0"
		}
	}
	return page, nil
}

// filter is a CloudWatch filter pattern, the unstructured subset: terms
// that must all appear ("ERROR timeout"), quoted phrases ("\"not found\""),
// optional terms of which one must appear ("?ERROR ?WARN"), and excluded
// terms ("-DEBUG"). Matching is case-sensitive, as CloudWatch's is.
type filter struct {
	all, any, none []string
}

func parseFilter(p string) (filter, error) {
	var f filter
	p = strings.TrimSpace(p)
	for p != "" {
		kind := byte(0)
		if p[0] == '?' || p[0] == '-' {
			kind, p = p[0], p[1:]
		}
		var term string
		if strings.HasPrefix(p, `"`) {
			end := strings.IndexByte(p[1:], '"')
			if end < 0 {
				return filter{}, fault.Invalid("filter has an unclosed quote")
			}
			term, p = p[1:end+1], p[end+2:]
		} else {
			end := strings.IndexAny(p, " \t")
			if end < 0 {
				end = len(p)
			}
			term, p = p[:end], p[end:]
		}
		p = strings.TrimSpace(p)
		if term == "" {
			continue
		}
		switch kind {
		case '?':
			f.any = append(f.any, term)
		case '-':
			f.none = append(f.none, term)
		default:
			f.all = append(f.all, term)
		}
	}
	return f, nil
}

func (f filter) match(line string) bool {
	for _, t := range f.all {
		if !strings.Contains(line, t) {
			return false
		}
	}
	for _, t := range f.none {
		if strings.Contains(line, t) {
			return false
		}
	}
	if len(f.any) == 0 {
		return true
	}
	for _, t := range f.any {
		if strings.Contains(line, t) {
			return true
		}
	}
	return false
}
