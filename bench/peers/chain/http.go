package main

// HTTP plumbing shared by the three roles: JSON answers, keep-alive clients
// for the upstream replicas, and calls that carry the request's budget and
// trace.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// apiError is the body of every error answer.
type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
	OrderID string `json:"order_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"encoding failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// maxBody bounds what a request body may be: ours are a few dozen bytes.
const maxBody = 64 << 10

// decodeBody reads r's JSON body into v, refusing unknown types for known
// fields (a string qty is a 400, not a zero).
func decodeBody(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v)
}

// upstream is one service's replicas, used round robin over a keep-alive
// client. The chain's fan-in is the load's concurrency, so the idle pool
// must hold as many connections as there are requests in flight, or every
// burst would open (and TIME_WAIT) fresh sockets.
type upstream struct {
	urls   []string
	next   atomic.Uint32
	client *http.Client
}

func newUpstream(list string) (*upstream, error) {
	u := &upstream{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		if !strings.HasPrefix(s, "http://") || len(s) == len("http://") {
			return nil, errors.New("bad upstream URL " + `"` + s + `"`)
		}
		u.urls = append(u.urls, s)
	}
	u.client = &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	return u, nil
}

func (u *upstream) url(path string) string {
	i := u.next.Add(1)
	return u.urls[int(i)%len(u.urls)] + path
}

// errBudget: too little of the budget is left to make a call worth sending.
var errBudget = errors.New("budget exhausted")

// call POSTs body as JSON to path at one of u's replicas under ctx's
// deadline, sending the remaining budget minus budgetMargin as grpc-timeout
// and a child span of trace (the incoming traceparent; "" starts one). It returns the status and the answer,
// decoded into out when 2xx and into the returned apiError otherwise.
func (u *upstream) call(ctx context.Context, trace, path string, body, out any) (int, apiError, error) {
	var ae apiError
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, ae, errors.New("call without a deadline")
	}
	left := time.Until(dl) - budgetMargin
	if left < time.Millisecond {
		return 0, ae, errBudget
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, ae, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url(path), bytes.NewReader(b))
	if err != nil {
		return 0, ae, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("grpc-timeout", formatGRPCTimeout(left))
	req.Header.Set("traceparent", childTraceparent(trace))
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, ae, err
	}
	defer resp.Body.Close()
	// Read the whole body so that the connection goes back to the pool.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, ae, err
	}
	if resp.StatusCode/100 == 2 {
		if out != nil {
			err = json.Unmarshal(raw, out)
		}
		return resp.StatusCode, ae, err
	}
	if json.Unmarshal(raw, &ae) != nil || ae.Code == "" {
		ae = apiError{Code: "upstream_failed", Message: resp.Status}
	}
	return resp.StatusCode, ae, nil
}

// callFailure turns a call's transport error into an answer: 504 when the
// budget ran out (before or during the call), 502 otherwise.
func callFailure(ctx context.Context, err error, what string) (int, apiError) {
	if errors.Is(err, errBudget) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, apiError{Code: "deadline_exceeded", Message: what + ": deadline exceeded"}
	}
	return http.StatusBadGateway, apiError{Code: "upstream_failed", Message: what + ": " + err.Error()}
}

// detached is the context for compensation (release, void): it must run
// even though the request that needs it has ended, with a budget of its own.
func detached(budget time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), budget)
}
