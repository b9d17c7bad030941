// A closed-loop unary gRPC client on grpc-go (what ghz is built on), raw bytes, no codegen.
//
// -c goroutines share one connection and call -method with the request bytes read from
// -request (a file) for -d seconds. Prints one JSON line: calls, errors, seconds, and the
// p50/p99 latency in ms, computed from every recorded latency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func main() {
	target := flag.String("target", "", "host:port")
	method := flag.String("method", "/inference.GRPCInferenceService/ModelInfer", "full method")
	reqFile := flag.String("request", "", "file with the serialized request")
	conc := flag.Int("c", 16, "concurrent calls")
	dur := flag.Float64("d", 5, "seconds")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	encoding.RegisterCodec(rawCodec{})
	req, err := os.ReadFile(*reqFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	conn, err := grpc.Dial(*target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	var errors int64
	lats := make([][]time.Duration, *conc)
	deadline := time.Now().Add(time.Duration(*dur * float64(time.Second)))
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<16)
			var resp []byte
			for {
				t := time.Now()
				if t.After(deadline) {
					break
				}
				r := req
				if err := conn.Invoke(context.Background(), *method, &r, &resp); err != nil {
					atomic.AddInt64(&errors, 1)
					continue
				}
				mine = append(mine, time.Since(t))
			}
			lats[i] = mine
		}(i)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(all)))
		if i >= len(all) {
			i = len(all) - 1
		}
		return float64(all[i].Microseconds()) / 1000
	}
	out, _ := json.Marshal(map[string]interface{}{
		"calls": len(all), "errors": errors, "seconds": secs,
		"p50": pct(50), "p99": pct(99),
	})
	fmt.Println(string(out))
}
