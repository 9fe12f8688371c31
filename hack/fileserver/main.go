// Command fileserver serves a folder read-only over HTTP. The local
// environment runs it in its shared-services namespace to publish CRD
// bundles, standing in for the HTTP mirror an air-gapped site keeps.
package main

import (
	"flag"
	"log/slog"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	dir := flag.String("dir", ".", "folder to serve")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	files := http.FileServer(http.Dir(*dir))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		log.Info("request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		files.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: *addr, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving", "dir", *dir, "listen", *addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
