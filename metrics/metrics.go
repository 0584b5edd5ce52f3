// Package metrics holds tokend's Prometheus instruments on a registry of
// their own (never the global one). Labels are closed sets (grant, dialect,
// reason code, route pattern): no secret, token or user input ever becomes a label.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the instruments the engine and the HTTP layer update.
type Metrics struct {
	Registry *prometheus.Registry
	// Issued counts tokens issued, by grant and dialect.
	Issued *prometheus.CounterVec
	// Failures counts refused requests, by dialect and error code.
	Failures *prometheus.CounterVec
	// Activity counts logins and refreshes that succeeded, by kind and dialect.
	Activity *prometheus.CounterVec
	// Latency observes request durations, by route and status class.
	Latency *prometheus.HistogramVec
	// Guard counts failed credential and token checks, by what failed.
	Guard *prometheus.CounterVec
	// AuditDropped counts audit events that could not be written.
	AuditDropped prometheus.Counter
}

// New makes the instruments and registers them, with the Go and process
// collectors, on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_tokens_issued_total", Help: "Tokens issued, by grant and dialect.",
		}, []string{"grant", "dialect"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_failures_total", Help: "Refused or failed requests, by dialect and reason.",
		}, []string{"dialect", "reason"}),
		Activity: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_user_activity_total", Help: "Successful logins and refreshes, by kind and dialect.",
		}, []string{"kind", "dialect"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokend_http_request_duration_seconds",
			Help:    "HTTP request latency, by route and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
	}
	m.Guard = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokend_failed_checks_total", Help: "Failed credential and token checks counted toward lockout and rate limits, by kind.",
	}, []string{"kind"})
	m.AuditDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokend_audit_dropped_total", Help: "Audit events dropped because the buffer was full or the store failed.",
	})
	m.Registry.MustRegister(m.Issued, m.Failures, m.Activity, m.Latency, m.Guard, m.AuditDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
