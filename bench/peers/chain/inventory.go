package main

// inventory: POST /reserve, POST /release, GET /stock/{item}.

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	stateReserved = "RESERVED"
	stateReleased = "RELEASED"
)

// reservation is what an order_id holds. A release that arrives before its
// reserve (the order gave up first) leaves a RELEASED record with qty 0, so
// that the late reserve is refused instead of taking stock nobody gives back.
type reservation struct {
	mu    sync.Mutex
	item  string
	qty   int64
	state string
}

type inventorySvc struct {
	timeout time.Duration
	payment *upstream
	stock   map[string]*atomic.Int64 // read-only after start: no lock
	resv    *store[*reservation]
}

// parseStock reads ITEM=N,... (N >= 0).
func parseStock(spec string) (map[string]*atomic.Int64, error) {
	m := make(map[string]*atomic.Int64)
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || k == "" || err != nil || n < 0 {
			return nil, errors.New("bad -stock entry " + `"` + kv + `"`)
		}
		m[k] = new(atomic.Int64)
		m[k].Store(n)
	}
	return m, nil
}

func defaultStock() string {
	var b strings.Builder
	for i := 1; i <= 10; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		b.WriteString("sku-" + strconv.Itoa(i) + "=1000000")
	}
	return b.String()
}

func (s *inventorySvc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/reserve" && r.Method == http.MethodPost:
		s.reserve(w, r)
	case p == "/release" && r.Method == http.MethodPost:
		s.release(w, r)
	case strings.HasPrefix(p, "/stock/") && r.Method == http.MethodGet:
		s.show(w, strings.TrimPrefix(p, "/stock/"))
	default:
		common(w, r)
	}
}

type reserveIn struct {
	OrderID *string `json:"order_id"`
	Item    *string `json:"item"`
	Qty     *int64  `json:"qty"`
	Amount  *int64  `json:"amount_cents"`
}

type chargeRequest struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount_cents"`
}

type reserveOut struct {
	OrderID string `json:"order_id"`
	Item    string `json:"item"`
	Qty     int64  `json:"qty"`
	Status  string `json:"status"`
}

// take decrements the item's stock by qty unless fewer are available.
func take(avail *atomic.Int64, qty int64) bool {
	for {
		n := avail.Load()
		if n < qty {
			return false
		}
		if avail.CompareAndSwap(n, n-qty) {
			return true
		}
	}
}

func (s *inventorySvc) reserve(w http.ResponseWriter, r *http.Request) {
	var in reserveIn
	if err := decodeBody(r, &in); err != nil || in.OrderID == nil || *in.OrderID == "" ||
		in.Item == nil || in.Qty == nil || *in.Qty < 1 || in.Amount == nil || *in.Amount < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "need order_id, item, qty >= 1, amount_cents >= 0")
		return
	}
	id, item, qty := *in.OrderID, *in.Item, *in.Qty
	avail, ok := s.stock[item]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_item", "no item "+item)
		return
	}
	ctx, cancel := requestContext(r, s.timeout)
	defer cancel()

	rv, _ := s.resv.getOrPut(id, func() *reservation { return &reservation{item: item} })
	rv.mu.Lock()
	switch rv.state {
	case "":
		if !take(avail, qty) {
			rv.mu.Unlock()
			s.resv.remove(id) // nothing held: a retry may succeed
			writeError(w, http.StatusConflict, "out_of_stock", "not enough "+item)
			return
		}
		rv.qty, rv.state = qty, stateReserved
	case stateReleased:
		rv.mu.Unlock()
		writeError(w, http.StatusConflict, "released", "order "+id+" was released")
		return
	}
	// stateReserved: a repeated reserve charges again (payment is
	// idempotent) without taking more stock.
	rv.mu.Unlock()

	st, ae, err := s.payment.call(ctx, r.Header.Get("traceparent"), "/charge",
		chargeRequest{id, *in.Amount}, nil)
	if err == nil && st == http.StatusOK {
		writeJSON(w, http.StatusOK, reserveOut{id, item, qty, stateReserved})
		return
	}
	s.giveBack(id)
	if err != nil {
		st, ae = callFailure(ctx, err, "payment")
	}
	writeJSON(w, st, ae)
}

// giveBack returns a reservation's stock once; it reports whether the
// order_id was ever seen (a first sight leaves the refusing tombstone).
func (s *inventorySvc) giveBack(id string) bool {
	rv, created := s.resv.getOrPut(id, func() *reservation { return &reservation{state: stateReleased} })
	rv.mu.Lock()
	if rv.state == stateReserved {
		s.stock[rv.item].Add(rv.qty)
	}
	rv.state = stateReleased
	rv.mu.Unlock()
	return !created
}

func (s *inventorySvc) release(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OrderID *string `json:"order_id"`
	}
	if err := decodeBody(r, &in); err != nil || in.OrderID == nil || *in.OrderID == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "need order_id")
		return
	}
	id := *in.OrderID
	if !s.giveBack(id) {
		writeError(w, http.StatusNotFound, "not_found", "order "+id+" was never reserved")
		return
	}
	ctx, cancel := requestContext(r, s.timeout)
	defer cancel()
	st, ae, err := s.payment.call(ctx, r.Header.Get("traceparent"), "/void", struct {
		OrderID string `json:"order_id"`
	}{id}, nil)
	switch {
	case err != nil:
		st, ae = callFailure(ctx, err, "payment")
	case st == http.StatusOK || st == http.StatusNotFound: // never charged: nothing to void
		writeJSON(w, http.StatusOK, orderStatus{id, stateReleased})
		return
	}
	writeJSON(w, st, ae)
}

func (s *inventorySvc) show(w http.ResponseWriter, item string) {
	avail, ok := s.stock[item]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_item", "no item "+item)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Item      string `json:"item"`
		Available int64  `json:"available"`
	}{item, avail.Load()})
}
