// Command chain is the Go net/http peer of sluice's demo chain
// (docs/services.md): order → inventory → payment → order's callback, in the
// contract's safe mode, with the same endpoints, JSON bodies, statuses and
// options, so that bench/chain-bench.sh can drive both with the same load.
//
//	go build -o chain-peer .
//	./chain-peer -role payment   -listen 127.0.0.1:0 -order http://127.0.0.1:8081
//	./chain-peer -role inventory -listen 127.0.0.1:0 -payment http://127.0.0.1:8083
//	./chain-peer -role order     -listen 127.0.0.1:0 -inventory http://127.0.0.1:8082
//
// Idiomatic Go: a goroutine per request (net/http's), context deadlines for
// budgets, sync.Mutex row locks, keep-alive clients. Standard library only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

const grace = 5 * time.Second

var defaultListen = map[string]string{
	"order": "127.0.0.1:8081", "inventory": "127.0.0.1:8082", "payment": "127.0.0.1:8083",
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "chain-peer: "+msg)
	os.Exit(2)
}

func main() {
	fs := flag.NewFlagSet("chain-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // one line of our own, below
	role := fs.String("role", "", "order | inventory | payment")
	listen := fs.String("listen", "", "HOST:PORT (port 0: any; default 127.0.0.1:8081/8082/8083)")
	timeoutMS := fs.Int("timeout-ms", 2000, "request budget; an incoming grpc-timeout can only shorten it")
	inventory := fs.String("inventory", "http://127.0.0.1:8082", "order: inventory replicas, comma-separated")
	payment := fs.String("payment", "http://127.0.0.1:8083", "inventory: payment replicas")
	orderURL := fs.String("order", "http://127.0.0.1:8081", "payment: order replicas")
	stock := fs.String("stock", defaultStock(), "inventory: initial stock ITEM=N,...")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) until SIGTERM/SIGINT")
	if err := fs.Parse(os.Args[1:]); err != nil {
		usage(err.Error())
	}
	if fs.NArg() > 0 {
		usage("unexpected argument " + fs.Arg(0))
	}
	if *timeoutMS < 1 {
		usage("-timeout-ms must be >= 1")
	}
	if _, ok := defaultListen[*role]; !ok {
		usage("-role must be order, inventory or payment")
	}
	if *listen == "" {
		*listen = defaultListen[*role]
	}
	timeout := time.Duration(*timeoutMS) * time.Millisecond

	h, err := handler(*role, timeout, *inventory, *payment, *orderURL, *stock)
	if err != nil {
		usage(err.Error())
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			usage(err.Error())
		}
	}
	rc := serve(*listen, h)
	pprof.StopCPUProfile() // a no-op without -cpuprofile
	os.Exit(rc)
}

// handler builds the role's service from its options.
func handler(role string, timeout time.Duration, inventory, payment, order, stock string) (http.Handler, error) {
	switch role {
	case "order":
		inv, err := newUpstream(inventory)
		if err != nil {
			return nil, err
		}
		return newOrderSvc(timeout, inv), nil
	case "inventory":
		pay, err := newUpstream(payment)
		if err != nil {
			return nil, err
		}
		st, err := parseStock(stock)
		if err != nil {
			return nil, err
		}
		return &inventorySvc{timeout: timeout, payment: pay, stock: st, resv: newStore[*reservation]()}, nil
	default:
		ord, err := newUpstream(order)
		if err != nil {
			return nil, err
		}
		return &paymentSvc{timeout: timeout, order: ord, charges: newStore[*charge]()}, nil
	}
}

// serve listens, says where on stdout, and serves until SIGTERM/SIGINT,
// then drains in-flight requests within the grace period.
func serve(addr string, h http.Handler) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chain-peer: "+err.Error())
		return 1
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan int, 1)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			done <- 1
			return
		}
		done <- 0
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "chain-peer: "+err.Error())
		return 1
	}
	return <-done
}

// common answers the paths every service has, and 404 for the rest.
func common(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, struct {
			Status string `json:"status"`
		}{"ok"})
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path)
}
