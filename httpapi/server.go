// Package httpapi serves tokend over HTTP: the standard OAuth 2.0 endpoints
// (token, revocation, introspection), the JWKS and discovery documents,
// /userinfo, health and metrics. It parses requests, calls the engine, and is
// the one place that turns the engine's error codes into OAuth statuses and
// bodies (RFC 6749 §5.2).
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/grant"
	"github.com/tokend/tokend/metrics"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 64 << 10

// Server holds what the handlers need.
type Server struct {
	Engine  *grant.Engine
	Store   tokend.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// JWKSMaxAge is the Cache-Control max-age of the JWKS document.
	JWKSMaxAge time.Duration
	// Routes are further endpoints served beside the standard ones (the
	// vendor dialects).
	Routes []Routes
	// TrustedProxies are the proxies whose X-Forwarded-For is believed;
	// without them the client IP is the connection's peer.
	TrustedProxies []netip.Prefix

	discovery        []byte
	jwksCacheControl []string
	openapiETag      string
	observers        sync.Map // observerKey -> prometheus.Observer
}

// Routes is a set of endpoints that registers itself on the server's mux.
type Routes interface {
	Register(mux Mux)
}

// Mux is where routes are registered: the methods of *http.ServeMux that
// take a pattern. The server registers on a recorder of its mux, so that
// Patterns can list every route served (the OpenAPI document is checked
// against that list).
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Handler returns the HTTP handler with every route mounted.
func (s *Server) Handler() http.Handler {
	s.discovery = s.discoveryDocument()
	s.jwksCacheControl = []string{"public, max-age=" + strconv.Itoa(int(s.JWKSMaxAge.Seconds()))}
	s.openapiETag = openapiETag()
	mux := http.NewServeMux()
	s.register(mux)
	return s.instrument(mux)
}

// Patterns returns the pattern of every route the handler serves, in the
// order they are registered (net/http's ServeMux pattern syntax: "POST
// /oauth2/token", "/oauth2/token" for its other methods, "/" for unknown
// paths).
func (s *Server) Patterns() []string {
	rec := &recorder{Mux: http.NewServeMux()}
	s.register(rec)
	return rec.patterns
}

// recorder is a Mux that remembers the patterns registered on it.
type recorder struct {
	Mux
	patterns []string
}

func (r *recorder) Handle(pattern string, h http.Handler) {
	r.patterns = append(r.patterns, pattern)
	r.Mux.Handle(pattern, h)
}

func (r *recorder) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.patterns = append(r.patterns, pattern)
	r.Mux.HandleFunc(pattern, h)
}

// register mounts every route on mux.
func (s *Server) register(mux Mux) {
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("POST /oauth2/introspect", s.handleIntrospect)
	s.registerRevocations(mux)
	for _, p := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		mux.HandleFunc(p, methodNotAllowed("POST"))
	}
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleDiscovery)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /userinfo", s.handleUserinfo)
	mux.HandleFunc("POST /userinfo", s.handleUserinfo)
	mux.HandleFunc("/userinfo", methodNotAllowed("GET, POST"))
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.json", s.handleOpenAPI)
	for _, p := range []string{"/.well-known/jwks.json", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/healthz", "/readyz", "/metrics", "/openapi.json"} {
		mux.HandleFunc(p, methodNotAllowed("GET"))
	}
	for _, r := range s.Routes {
		r.Register(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no such endpoint"})
	})
}

// instrument times every request by route, and turns a panic into a
// generic 500 instead of a dropped connection.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The peer's address is set once per connection (ConnContext); only
		// a request through a trusted proxy, or a server without
		// ConnContext, needs its own.
		if ip := tokend.ClientIP(r.Context()); ip == "" || len(s.TrustedProxies) > 0 {
			r = r.WithContext(tokend.WithClientIP(r.Context(), s.clientIP(r)))
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("panic serving request", "path", r.URL.Path, "panic", v)
				if !sw.wrote {
					writeJSON(sw, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "internal error"})
				}
			}
			s.observer(r.Pattern, sw.code).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// ConnContext puts a connection's peer address in the context of every
// request on it; set it as the http.Server's ConnContext.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return tokend.WithClientIP(ctx, ap.Addr().Unmap().String())
	}
	return ctx
}

// clientIP is the address a request came from: the peer, or, when the peer
// is a trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (s *Server) clientIP(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	ip := peer.Addr().Unmap()
	if !s.trusted(ip) {
		return ip.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		ip = hop.Unmap()
		if !s.trusted(ip) {
			break
		}
	}
	return ip.String()
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// observer returns the latency histogram of a route and status, resolved
// once per pair (the label lookup is not free on the hot path).
func (s *Server) observer(route string, code int) prometheus.Observer {
	if route == "" {
		route = "unmatched"
	}
	key := observerKey{route, code}
	if o, ok := s.observers.Load(key); ok {
		return o.(prometheus.Observer)
	}
	o := s.Metrics.Latency.WithLabelValues(route, strconv.Itoa(code))
	s.observers.Store(key, o)
	return o
}

type observerKey struct {
	route string
	code  int
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "method not allowed"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.Log.Warn("not ready", "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
