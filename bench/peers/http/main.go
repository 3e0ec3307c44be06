// The Go peer of bench/http-bench.sh: net/http's hello, as sluice's
// examples/hello serves it (GET /hello -> {"message":"Hello, World!"}).
//
//	GOMAXPROCS=1 http-peer -listen 127.0.0.1:0
//
// It prints "listening on HOST:PORT" first, like the sluice programs, and
// serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

var body = []byte(`{"message":"Hello, World!"}`)

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "HOST:PORT (port 0 picks a free one)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", hello)
	log.Fatal(http.Serve(ln, mux))
}
