// Command echoserver answers every HTTP request with the pod's host name.
// The local environment's smoke tests run it as a workload, on nodes that
// cannot pull images from a registry.
//
// With -get it is the client instead: it fetches a URL from inside a pod,
// through the pod's DNS, prints the body and exits 0 on a 200 answer. With
// -dial it opens a TCP connection to host:port and exits 0 once one is
// established: what a NetworkPolicy test needs. Both try a bounded number
// of times, so a test never waits forever.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("listen", ":8080", "address to serve on")
	get := flag.String("get", "", "fetch this URL, print the body and exit instead of serving")
	dial := flag.String("dial", "", "connect to this host:port over TCP and exit instead of serving")
	tries := flag.Int("tries", 30, "attempts of -get or -dial, one second apart")
	flag.Parse()
	if *get != "" {
		os.Exit(fetch(*get, *tries))
	}
	if *dial != "" {
		os.Exit(connect(*dial, *tries))
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func connect(addr string, tries int) int {
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			_ = conn.Close()
			fmt.Printf("connected to %s\n", addr)
			return 0
		}
		last = err
	}
	fmt.Fprintf(os.Stderr, "dial %s: %d tries failed, last: %v\n", addr, tries, last)
	return 1
}

func fetch(url string, tries int) int {
	client := &http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			fmt.Print(string(body))
			return 0
		}
		last = fmt.Errorf("status %s, body %q, read error %v", resp.Status, body, err)
	}
	fmt.Fprintf(os.Stderr, "GET %s: %d tries failed, last: %v\n", url, tries, last)
	return 1
}
