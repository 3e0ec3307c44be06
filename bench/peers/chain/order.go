package main

// order: POST /orders, GET /orders/{id}, POST /orders/{id}/paid, in the
// contract's safe mode: the row lock is taken briefly to create the order
// and again by payment's callback, never across a remote call.

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	statusPending = "PENDING"
	statusPaid    = "PAID"
	statusFailed  = "FAILED"
)

type order struct {
	mu     sync.Mutex // the row lock
	id     string
	item   string
	qty    int64
	amount int64
	status string
}

type orderView struct {
	OrderID string `json:"order_id"`
	Item    string `json:"item"`
	Qty     int64  `json:"qty"`
	Amount  int64  `json:"amount_cents"`
	Status  string `json:"status"`
}

type orderStatus struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

type orderSvc struct {
	timeout   time.Duration
	inventory *upstream
	orders    *store[*order]
	prefix    string // random per process, so ids of two runs differ
	seq       atomic.Uint64
}

func newOrderSvc(timeout time.Duration, inventory *upstream) *orderSvc {
	var b [4]byte
	return &orderSvc{timeout: timeout, inventory: inventory,
		orders: newStore[*order](), prefix: randomHex(b[:]) + "-"}
}

func (s *orderSvc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/orders" && r.Method == http.MethodPost:
		s.create(w, r)
	case strings.HasPrefix(p, "/orders/") && strings.HasSuffix(p, "/paid") && r.Method == http.MethodPost:
		s.paid(w, strings.TrimSuffix(strings.TrimPrefix(p, "/orders/"), "/paid"))
	case strings.HasPrefix(p, "/orders/") && r.Method == http.MethodGet:
		s.show(w, strings.TrimPrefix(p, "/orders/"))
	default:
		common(w, r)
	}
}

type orderRequest struct {
	Item   *string `json:"item"`
	Qty    *int64  `json:"qty"`
	Amount *int64  `json:"amount_cents"`
}

type reserveRequest struct {
	OrderID string `json:"order_id"`
	Item    string `json:"item"`
	Qty     int64  `json:"qty"`
	Amount  int64  `json:"amount_cents"`
}

func (s *orderSvc) create(w http.ResponseWriter, r *http.Request) {
	var in orderRequest
	if err := decodeBody(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON: "+err.Error())
		return
	}
	if in.Item == nil || *in.Item == "" || in.Qty == nil || *in.Qty < 1 || in.Amount == nil || *in.Amount < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "need item (string), qty >= 1, amount_cents >= 0")
		return
	}
	ctx, cancel := requestContext(r, s.timeout)
	defer cancel()

	o := &order{id: s.prefix + strconv.FormatUint(s.seq.Add(1), 16),
		item: *in.Item, qty: *in.Qty, amount: *in.Amount, status: statusPending}
	o.mu.Lock()
	s.orders.getOrPut(o.id, func() *order { return o })
	o.mu.Unlock()

	trace := r.Header.Get("traceparent")
	st, ae, err := s.inventory.call(ctx, trace, "/reserve",
		reserveRequest{o.id, o.item, o.qty, o.amount}, nil)
	if err == nil && st == http.StatusOK {
		o.mu.Lock()
		paid := o.status == statusPaid
		o.mu.Unlock()
		if paid {
			writeJSON(w, http.StatusCreated, orderStatus{o.id, statusPaid})
			return
		}
		st, ae = http.StatusBadGateway, apiError{Code: "upstream_failed", Message: "reserved but never paid"}
	} else if err != nil {
		st, ae = callFailure(ctx, err, "inventory")
	} else {
		st, ae = orderFailure(st, ae)
	}
	s.fail(o, trace)
	ae.OrderID = o.id
	writeJSON(w, st, ae)
}

// orderFailure is what order answers for inventory's error answer.
func orderFailure(st int, ae apiError) (int, apiError) {
	switch {
	case st == http.StatusConflict && (ae.Code == "out_of_stock" || ae.Code == "unknown_item"),
		st == http.StatusServiceUnavailable, st == http.StatusGatewayTimeout, st == http.StatusLoopDetected:
		return st, ae
	case st == http.StatusNotFound && ae.Code == "unknown_item":
		return http.StatusConflict, ae
	}
	return http.StatusBadGateway, apiError{Code: "upstream_failed",
		Message: "inventory answered " + strconv.Itoa(st) + " " + ae.Code}
}

// fail marks o FAILED (so that a late callback is refused and payment voids
// its charge) and gives the reservation back in the background: the client's
// answer does not wait for compensation, which has its own budget.
func (s *orderSvc) fail(o *order, trace string) {
	o.mu.Lock()
	o.status = statusFailed
	o.mu.Unlock()
	go func() {
		ctx, cancel := detached(s.timeout)
		defer cancel()
		s.inventory.call(ctx, trace, "/release", struct {
			OrderID string `json:"order_id"`
		}{o.id}, nil)
	}()
}

func (s *orderSvc) paid(w http.ResponseWriter, id string) {
	o, ok := s.orders.get(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "no order " + id, OrderID: id})
		return
	}
	o.mu.Lock()
	failed := o.status == statusFailed
	if !failed {
		o.status = statusPaid
	}
	o.mu.Unlock()
	if failed {
		writeJSON(w, http.StatusConflict, apiError{Code: "order_failed", Message: "order already failed", OrderID: id})
		return
	}
	writeJSON(w, http.StatusOK, orderStatus{id, statusPaid})
}

func (s *orderSvc) show(w http.ResponseWriter, id string) {
	o, ok := s.orders.get(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "no order " + id, OrderID: id})
		return
	}
	o.mu.Lock()
	v := orderView{o.id, o.item, o.qty, o.amount, o.status}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}
