package main

// What a request carries on the wire, as sluice's context/sl_wire.h defines
// it: the remaining budget as a relative grpc-timeout, and the W3C
// traceparent.

import (
	"context"
	"encoding/hex"
	"math/rand"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// budgetMargin is what an outgoing call leaves of the budget for its answer
// to come back (sluice's services use the same 5 ms).
const budgetMargin = 5 * time.Millisecond

// parseGRPCTimeout reads 1-8 ASCII digits and one unit (H M S m u n).
func parseGRPCTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
	if err != nil { // ParseUint takes no sign
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// formatGRPCTimeout writes d with the finest unit whose count fits in 8
// digits, rounding down: a budget never grows on the wire.
func formatGRPCTimeout(d time.Duration) string {
	const max = 99999999
	units := []struct {
		d time.Duration
		c string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"},
		{time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}}
	for _, u := range units {
		if n := d / u.d; n <= max {
			return strconv.FormatInt(int64(n), 10) + u.c
		}
	}
	return "99999999H"
}

// requestContext is the context of an incoming request: the connection's
// (cancelled when the client goes away) with the budget min(grpc-timeout,
// -timeout-ms). A malformed grpc-timeout is ignored.
func requestContext(r *http.Request, max time.Duration) (context.Context, context.CancelFunc) {
	budget := max
	if d, ok := parseGRPCTimeout(r.Header.Get("grpc-timeout")); ok && d < budget {
		budget = d
	}
	return context.WithTimeout(r.Context(), budget)
}

// A per-goroutine-cheap source of span ids: math/rand's global source is one
// lock for every caller, a pool keeps them apart.
var rngPool = sync.Pool{New: func() any { return rand.New(rand.NewSource(time.Now().UnixNano())) }}

func randomHex(buf []byte) string {
	rng := rngPool.Get().(*rand.Rand)
	rng.Read(buf)
	rngPool.Put(rng)
	buf[0] |= 1 // never all zero
	return hex.EncodeToString(buf)
}

// validTraceparent accepts the version 00 form only (55 bytes, lowercase hex).
func validTraceparent(s string) bool {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	for i := 3; i < 55; i++ {
		if i == 35 || i == 52 {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// childTraceparent is the header for a call made under the incoming
// traceparent tp: the same trace-id and flags with a new span-id, or a fresh
// trace when tp is empty or malformed.
func childTraceparent(tp string) string {
	var span [8]byte
	if validTraceparent(tp) {
		return tp[:36] + randomHex(span[:]) + tp[52:]
	}
	var trace [16]byte
	return "00-" + randomHex(trace[:]) + "-" + randomHex(span[:]) + "-01"
}
