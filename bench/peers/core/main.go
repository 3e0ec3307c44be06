// Command core is the Go peer of sluice's bench/core-bench: the same figures
// under the same key names, measured the same way, printed as one JSON object
// so that bench/run-peers.sh can set the two side by side.
//
//	go build -o core-peer . && ./core-peer [-quick] [-procs 1] [-cross-procs 2] [-only k1,k2]
//
// Each timed figure is calibrated to take about -target per run (the
// calibration runs double as warm-up), then run three times; the best run is
// reported, as core-bench does, so a noisy neighbour spoils at most one run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	quick      = flag.Bool("quick", false, "short runs (about a tenth of the time)")
	procs      = flag.Int("procs", 1, "GOMAXPROCS for the single-reactor figures (sluice runs them on one reactor)")
	crossProcs = flag.Int("cross-procs", 2, "GOMAXPROCS for cross_reactor_msgs_per_s (sluice uses two reactors)")
	target     = flag.Duration("target", 500*time.Millisecond, "time per timed run (-quick divides it by 10)")
	only       = flag.String("only", "", "comma-separated keys to measure (default: all)")
	verbose    = flag.Bool("v", false, "report on stderr how long each figure took")
)

// opBench runs n operations and returns how long they took.
type opBench func(n int) time.Duration

// perOp calibrates n so that one run of b takes about *target, then returns
// the best ns/op of three runs. The calibration runs are the warm-up.
func perOp(b opBench) float64 {
	want := *target
	if *quick {
		want /= 10
	}
	n := 100
	for {
		d := b(n)
		if d >= want/4 || n >= 1<<30 {
			// Scale to the target from what we have seen.
			if d > 0 {
				n = int(float64(n) * float64(want) / float64(d))
			}
			break
		}
		n *= 4
	}
	if n < 1 {
		n = 1
	}
	best := 0.0
	for i := 0; i < 3; i++ {
		runtime.GC() // start each run with a clean heap, not the last run's garbage
		ns := float64(b(n).Nanoseconds()) / float64(n)
		if i == 0 || ns < best {
			best = ns
		}
	}
	return best
}

// bestOf3 is for figures that are one fixed-size event (fanout, chain).
func bestOf3(f func() float64) float64 {
	best := 0.0
	for i := 0; i < 3; i++ {
		runtime.GC()
		if v := f(); i == 0 || v < best {
			best = v
		}
	}
	return best
}

// sink keeps the compiler from proving received values unused.
var sink int64

func chanSendRecv(n int) time.Duration {
	ch := make(chan int64, 1)
	var got int64
	start := time.Now()
	for i := 0; i < n; i++ {
		ch <- int64(i)
		got += <-ch
	}
	d := time.Since(start)
	sink = got
	return d
}

// roundTrips: n round trips, each a send on a and a receive on b, with a
// goroutine echoing a into b; closes a at the end.
func roundTrips(a, b chan int64, n int) time.Duration {
	go func() {
		for v := range a {
			b <- v
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		a <- int64(i)
		<-b
	}
	d := time.Since(start)
	close(a)
	return d
}

// pingPong: round trips through unbuffered channels.
func pingPong(n int) time.Duration {
	return roundTrips(make(chan int64), make(chan int64), n)
}

// crossPingPong: pingPong between two Ps, through channels of capacity 1
// (core-bench's cross_reactor_chan_pingpong_ns: one task on each reactor).
func crossPingPong(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	return roundTrips(make(chan int64, 1), make(chan int64, 1), n)
}

// flagRoundTrip: core-bench's thread_flag_roundtrip_ns, two goroutines on
// two Ps handing a counter back and forth through two atomic words, each
// polling without parking, so they run on two threads and every leg
// crosses CPUs: what a cache line's round trip between the two CPUs costs
// (docs/core.md, "The slow mode").
func flagRoundTrip(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	var ab, ba atomic.Int64
	done := make(chan struct{})
	go func() {
		for i := int64(1); i <= int64(n); i++ {
			for ab.Load() != i {
			}
			ba.Store(i)
		}
		close(done)
	}()
	start := time.Now()
	for i := int64(1); i <= int64(n); i++ {
		ab.Store(i)
		for ba.Load() != i {
		}
	}
	d := time.Since(start)
	<-done
	return d
}

// pollRecv receives from c without parking: a select with default, again
// until a value is there, so the goroutine keeps its P.
func pollRecv(c chan int64) int64 {
	for {
		select {
		case v := <-c:
			return v
		default:
		}
	}
}

// crossCPUPingPong: crossPingPong with each goroutine polling its channel
// (a select with default) instead of parking, so neither leaves its P and
// every leg crosses CPUs, as a leg between two sluice reactors does; Go's
// own ping-pong readies the receiver on the sender's P and stays on one
// CPU (docs/core.md, "The slow mode").
func crossCPUPingPong(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	a, b := make(chan int64, 1), make(chan int64, 1)
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			b <- pollRecv(a)
		}
		close(done)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		a <- int64(i)
		pollRecv(b)
	}
	d := time.Since(start)
	<-done
	return d
}

// crossSelectRv: a select over two unbuffered channels, one fed from a
// goroutine, the other idle, on two Ps (core-bench's
// cross_reactor_select_rv_ns: the select on one reactor, the sender at the
// rendezvous channel's home on the other).
func crossSelectRv(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	rv, idle := make(chan int64), make(chan int64)
	go func() {
		for i := 0; i < n; i++ {
			rv <- int64(i)
		}
	}()
	var got int64
	start := time.Now()
	for i := 0; i < n; i++ {
		select {
		case v := <-rv:
			got += v
		case v := <-idle:
			got += v
		}
	}
	d := time.Since(start)
	sink = got
	return d
}

// produce sends n values to a consumer over a channel of capacity c and
// times until the consumer has received the last one.
func produce(n, c int) time.Duration {
	ch := make(chan int64, c)
	done := make(chan struct{})
	go func() {
		var s int64
		for v := range ch {
			s += v
		}
		sink = s
		close(done)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ch <- int64(i)
	}
	close(ch)
	<-done
	return time.Since(start)
}

func throughput(n int) time.Duration { return produce(n, 128) }

// crossThroughput is the same pipe with two Ps, so producer and consumer can
// run on two threads as sluice's two reactors do. Go may still keep both on
// one P; that is its scheduler's call, and part of what is measured.
func crossThroughput(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	return produce(n, 1024)
}

// wpWork is core-bench's wp_work: 256 steps of an LCG.
func wpWork(v int64) int64 {
	x := uint64(v)
	for i := 0; i < 256; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return int64(x)
}

// workerPool mirrors core-bench's worker_pool_items_per_s: one producer
// sends n jobs on a channel of capacity 1024 and closes it, a worker per P
// (GOMAXPROCS=cross-procs) works on each and sends the result on another
// channel of capacity 1024, and the caller collects the n results.
func workerPool(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	jobs, results := make(chan int64, 1024), make(chan int64, 1024)
	for w := 0; w < *crossProcs; w++ {
		go func() {
			for v := range jobs {
				results <- wpWork(v)
			}
		}()
	}
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			jobs <- int64(i)
		}
		close(jobs)
	}()
	var s int64
	for i := 0; i < n; i++ {
		s += <-results
	}
	sink = s
	return time.Since(start)
}

// select4 mirrors core-bench: make one of four channels ready, then select.
func select4(n int) time.Duration {
	var c [4]chan int64
	for i := range c {
		c[i] = make(chan int64, 1)
	}
	var got int64
	start := time.Now()
	for i := 0; i < n; i++ {
		c[i&3] <- int64(i)
		select {
		case v := <-c[0]:
			got += v
		case v := <-c[1]:
			got += v
		case v := <-c[2]:
			got += v
		case v := <-c[3]:
			got += v
		}
	}
	d := time.Since(start)
	sink = got
	return d
}

func spawnJoin(n int) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go wg.Done()
		wg.Wait()
	}
	return time.Since(start)
}

// offloadRoundTrip is Go's way to make a blocking call that its caller
// can give up on: a goroutine makes the call (an empty syscall here,
// getppid) and hands the result back on a channel, and the caller selects
// on that and its context. Two Ps, as sluice uses a reactor and a worker
// thread.
func offloadRoundTrip(n int) time.Duration {
	prev := runtime.GOMAXPROCS(*crossProcs)
	defer runtime.GOMAXPROCS(prev)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got int64
	start := time.Now()
	for i := 0; i < n; i++ {
		ch := make(chan int64, 1)
		go func() {
			r, _, _ := syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
			ch <- int64(r)
		}()
		select {
		case v := <-ch:
			got += v
		case <-ctx.Done():
		}
	}
	d := time.Since(start)
	sink = got
	return d
}

// sleepCalls: w goroutines make n blocking calls of 1 ms (nanosleep) in
// all, as core-bench's offload_sleep1ms figures do on w worker threads. Go
// hands a P stuck in a syscall to another thread, so w goroutines block
// side by side however many Ps there are.
func sleepCalls(w int) opBench {
	return func(n int) time.Duration {
		var wg sync.WaitGroup
		left := int64(n)
		start := time.Now()
		for i := 0; i < w; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for atomic.AddInt64(&left, -1) >= 0 {
					ts := syscall.Timespec{Nsec: 1000000}
					syscall.Nanosleep(&ts, nil)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
}

func mutex(n int) time.Duration {
	var m sync.Mutex
	start := time.Now()
	for i := 0; i < n; i++ {
		m.Lock()
		m.Unlock()
	}
	return time.Since(start)
}

// ctxCancel: the parent is cancellable, so each child registers with it and
// cancel() unregisters it, as sl_ctx_with_cancel under a cancel parent does.
func ctxCancel(n int) time.Duration {
	parent, stop := context.WithCancel(context.Background())
	defer stop()
	start := time.Now()
	for i := 0; i < n; i++ {
		_, cancel := context.WithCancel(parent)
		cancel()
	}
	return time.Since(start)
}

func ctxTimeout(n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		_, cancel := context.WithTimeout(context.Background(), time.Hour)
		cancel()
	}
	return time.Since(start)
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * int64(os.Getpagesize())
}

// parkedBytes is RSS growth per goroutine parked on a channel receive. It
// counts what parking really costs: stack, g, sudog and the runtime's
// bookkeeping. It runs in a child process (see isolated) so that the heap of
// earlier figures does not hide growth, and its million dead g's, which Go
// never frees, do not slow the GCs of later ones.
func parkedBytes() float64 {
	n := 1000000
	if *quick {
		n /= 10
	}
	runtime.GC()
	debug.FreeOSMemory()
	before := rss()
	ch := make(chan struct{})
	var parked, done sync.WaitGroup
	parked.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-ch
			done.Done()
		}()
	}
	parked.Wait()
	time.Sleep(20 * time.Millisecond) // the last ones reach their receive
	after := rss()
	close(ch)
	done.Wait()
	return float64(after-before) / float64(n)
}

// fanout: 100,000 children of one parent, each with a goroutine parked on
// its Done(); the time from cancelling the parent until all have resumed.
func fanout() float64 {
	const n = 100000
	root, cancel := context.WithCancel(context.Background())
	var parked, woke sync.WaitGroup
	parked.Add(n)
	woke.Add(n)
	for i := 0; i < n; i++ {
		c, stop := context.WithCancel(root)
		go func() {
			defer stop()
			done := c.Done()
			parked.Done()
			<-done
			woke.Done()
		}()
	}
	parked.Wait()
	time.Sleep(20 * time.Millisecond) // the last ones reach their receive
	start := time.Now()
	cancel()
	woke.Wait()
	return float64(time.Since(start).Nanoseconds()) / 1e6
}

// chain: depth 1,000; the time to cancel the root until the deepest Done()
// is closed. Best of 20 inside, like core-bench, as one cancel is ~100 µs.
func chain() float64 {
	const depth = 1000
	bestNs := int64(-1)
	cancels := make([]context.CancelFunc, depth)
	for r := 0; r < 20; r++ {
		ctx := context.Background()
		for i := range cancels {
			ctx, cancels[i] = context.WithCancel(ctx)
		}
		deepest := ctx.Done() // someone waits there, so its channel exists
		start := time.Now()
		cancels[0]()
		<-deepest
		if d := time.Since(start).Nanoseconds(); bestNs < 0 || d < bestNs {
			bestNs = d
		}
		for _, c := range cancels {
			c() // a no-op once the root is cancelled, but every CancelFunc is called
		}
	}
	return float64(bestNs) / 1e3
}

type figure struct {
	key     string
	measure func() float64
	// isolated figures run in a fresh child process: they create 100k-1M
	// goroutines, whose g's stay in the runtime for good and would make
	// every later GC, and so the later figures, slower.
	isolated bool
}

// inChild measures one figure in a child process running this program with
// the same flags and -only key.
func inChild(key string) (float64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	args := []string{"-only", key}
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "only" && f.Name != "v" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %v", key, err)
	}
	var m map[string]float64
	if err := json.Unmarshal(out, &m); err != nil {
		return 0, fmt.Errorf("%s: %v", key, err)
	}
	v, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("%s: missing from child's output", key)
	}
	return v, nil
}

// askedOnly: figures measured only when -only names them (no sluice key
// of a full run has them as its peer).
var askedOnly = map[string]bool{"thread_flag_roundtrip_ns": true, "cross_cpu_chan_pingpong_ns": true}

// childEnv marks a child started by inChild, which measures in-process.
const childEnv = "SLUICE_CORE_PEER_CHILD"

func nsFig(b opBench) func() float64 { return func() float64 { return perOp(b) } }

// rateFig turns ns per message into messages per second.
func rateFig(b opBench) func() float64 { return func() float64 { return 1e9 / perOp(b) } }

func main() {
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	figures := []figure{
		{"chan_send_recv_ns", nsFig(chanSendRecv), false},
		{"chan_pingpong_ns", nsFig(pingPong), false},
		{"chan_throughput_msgs_per_s", rateFig(throughput), false},
		{"select4_ns", nsFig(select4), false},
		{"task_spawn_join_ns", nsFig(spawnJoin), false},
		{"bytes_per_parked_task", parkedBytes, true},
		{"cross_reactor_msgs_per_s", rateFig(crossThroughput), false},
		// Go has one way between threads, a channel, so the peer of both
		// core-bench's posted messages and its cross-reactor channel is the
		// same pipe, measured again for each.
		{"cross_reactor_chan_msgs_per_s", rateFig(crossThroughput), false},
		// core-bench's receive-side figure (the consumer on the other
		// reactor) is, for Go, the same two goroutines again.
		{"cross_reactor_chan_recv_msgs_per_s", rateFig(crossThroughput), false},
		{"cross_reactor_chan_pingpong_ns", nsFig(crossPingPong), false},
		{"cross_reactor_select_rv_ns", nsFig(crossSelectRv), false},
		// Not figures of a sluice key's peer: what a leg crossing CPUs
		// costs Go (docs/core.md, "The slow mode"); asked for with -only.
		{"thread_flag_roundtrip_ns", nsFig(flagRoundTrip), false},
		{"cross_cpu_chan_pingpong_ns", nsFig(crossCPUPingPong), false},
		{"worker_pool_items_per_s", rateFig(workerPool), false},
		{"offload_roundtrip_ns", nsFig(offloadRoundTrip), false},
		{"offload_sleep1ms_items_per_s_w1", rateFig(sleepCalls(1)), false},
		{"offload_sleep1ms_items_per_s_w4", rateFig(sleepCalls(4)), false},
		{"offload_sleep1ms_items_per_s_w16", rateFig(sleepCalls(16)), false},
		{"mutex_lock_unlock_ns", nsFig(mutex), false},
		{"ctx_with_cancel_cancel_ns", nsFig(ctxCancel), false},
		{"ctx_with_timeout_cancel_ns", nsFig(ctxTimeout), false},
		{"ctx_cancel_fanout_100k_ms", func() float64 { return bestOf3(fanout) }, true},
		{"ctx_cancel_chain_1000_us", func() float64 { return bestOf3(chain) }, false},
	}

	want := map[string]bool{}
	for _, k := range strings.Split(*only, ",") {
		if k != "" {
			want[k] = true
		}
	}
	known := map[string]bool{}
	for _, f := range figures {
		known[f.key] = true
	}
	for k := range want {
		if !known[k] {
			fmt.Fprintf(os.Stderr, "core-peer: unknown key %q\n", k)
			os.Exit(2)
		}
	}

	// Printed as we go, in core-bench's order and format, so a slow run
	// shows progress and the object is valid JSON once it ends.
	sep := "{"
	for _, f := range figures {
		if len(want) > 0 && !want[f.key] {
			continue
		}
		if len(want) == 0 && askedOnly[f.key] {
			continue
		}
		t0 := time.Now()
		var v float64
		if f.isolated && os.Getenv(childEnv) == "" {
			var err error
			if v, err = inChild(f.key); err != nil {
				fmt.Fprintln(os.Stderr, "core-peer:", err)
				os.Exit(1)
			}
		} else {
			v = f.measure()
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "core-peer: %s took %v\n", f.key, time.Since(t0).Round(time.Millisecond))
		}
		fmt.Printf("%s\n  %q: %.3f", sep, f.key, v)
		sep = ","
	}
	if sep == "{" {
		fmt.Print("{")
	}
	fmt.Println("\n}")
}
