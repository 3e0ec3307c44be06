package main

// payment: POST /charge, POST /void, GET /charges/{order_id}.

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	chargeCharged = "CHARGED"
	chargeVoided  = "VOIDED"
)

type charge struct {
	mu     sync.Mutex
	amount int64
	status string
}

type chargeView struct {
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount_cents"`
	Status  string `json:"status"`
}

type paymentSvc struct {
	timeout time.Duration
	order   *upstream
	charges *store[*charge]
}

func (s *paymentSvc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/charge" && r.Method == http.MethodPost:
		s.charge(w, r)
	case p == "/void" && r.Method == http.MethodPost:
		s.void(w, r)
	case strings.HasPrefix(p, "/charges/") && r.Method == http.MethodGet:
		s.show(w, strings.TrimPrefix(p, "/charges/"))
	default:
		common(w, r)
	}
}

func (s *paymentSvc) charge(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OrderID *string `json:"order_id"`
		Amount  *int64  `json:"amount_cents"`
	}
	if err := decodeBody(r, &in); err != nil || in.OrderID == nil || *in.OrderID == "" ||
		in.Amount == nil || *in.Amount < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "need order_id, amount_cents >= 0")
		return
	}
	id := *in.OrderID
	ctx, cancel := requestContext(r, s.timeout)
	defer cancel()

	c, _ := s.charges.getOrPut(id, func() *charge { return &charge{amount: *in.Amount, status: chargeCharged} })
	c.mu.Lock()
	voided := c.status == chargeVoided
	c.mu.Unlock()
	if voided {
		writeError(w, http.StatusConflict, "order_failed", "charge for "+id+" was voided")
		return
	}

	st, ae, err := s.order.call(ctx, r.Header.Get("traceparent"),
		"/orders/"+url.PathEscape(id)+"/paid", struct{}{}, nil)
	if err == nil && st == http.StatusOK {
		writeJSON(w, http.StatusOK, chargeView{id, c.amount, chargeCharged})
		return
	}
	s.setVoided(c)
	switch {
	case err != nil:
		st, ae = callFailure(ctx, err, "order")
	case st == http.StatusConflict:
		ae = apiError{Code: "order_failed", Message: "order " + id + " already failed"}
	}
	writeJSON(w, st, ae)
}

func (s *paymentSvc) setVoided(c *charge) {
	c.mu.Lock()
	c.status = chargeVoided
	c.mu.Unlock()
}

func (s *paymentSvc) void(w http.ResponseWriter, r *http.Request) {
	var in struct {
		OrderID *string `json:"order_id"`
	}
	if err := decodeBody(r, &in); err != nil || in.OrderID == nil || *in.OrderID == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "need order_id")
		return
	}
	c, ok := s.charges.get(*in.OrderID)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no charge for "+*in.OrderID)
		return
	}
	s.setVoided(c)
	writeJSON(w, http.StatusOK, chargeView{*in.OrderID, c.amount, chargeVoided})
}

func (s *paymentSvc) show(w http.ResponseWriter, id string) {
	c, ok := s.charges.get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no charge for "+id)
		return
	}
	c.mu.Lock()
	v := chargeView{id, c.amount, c.status}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}
