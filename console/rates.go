package console

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokend/tokend/metrics"
)

// rates keeps the last hour of tokens issued and failures per minute, from
// this process's own counters (tokend_tokens_issued_total and
// tokend_failures_total), for the overview's chart. It is per node: each
// node counts what it served.
type rates struct {
	m  *metrics.Metrics
	mu sync.Mutex
	// The counters' totals at the previous sample; a sample adds the
	// difference to the minute it falls in.
	lastIssued, lastFailed float64
	minute                 [60]int64 // the unix minute each slot holds
	issued, failed         [60]float64
}

func newRates(m *metrics.Metrics) *rates {
	if m == nil {
		return nil
	}
	return &rates{m: m}
}

// total sums every series of a counter.
func total(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 32)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil && d.Counter != nil {
			sum += d.Counter.GetValue()
		}
	}
	return sum
}

// sample reads the counters and adds what they gained to now's minute.
func (r *rates) sample(now time.Time) {
	iss, fail := total(r.m.Issued), total(r.m.Failures)
	r.mu.Lock()
	defer r.mu.Unlock()
	min := now.Unix() / 60
	slot := min % 60
	if r.minute[slot] != min {
		r.minute[slot], r.issued[slot], r.failed[slot] = min, 0, 0
	}
	r.issued[slot] += max(iss-r.lastIssued, 0)
	r.failed[slot] += max(fail-r.lastFailed, 0)
	r.lastIssued, r.lastFailed = iss, fail
}

func (r *rates) run(ctx context.Context, now func() time.Time, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sample(now())
		}
	}
}

// hour returns the counts of the 60 minutes up to now's, oldest first.
func (r *rates) hour(now time.Time) (issued, failed [60]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := now.Unix() / 60
	for i := range 60 {
		min := cur - 59 + int64(i)
		if slot := min % 60; r.minute[slot] == min {
			issued[i], failed[i] = r.issued[slot], r.failed[slot]
		}
	}
	return issued, failed
}

// chart is the overview's bar chart, drawn by the template as inline SVG
// (no script, no external image).
type chart struct {
	Width, Height     int
	Bars              []bar  // tokens issued per minute
	Line              string // failures per minute, as polyline points
	Max               int    // the top of the scale
	Issued, Failed    int    // in the last hour
	Marks             []mark // the time axis' labels, left to right
	Busiest, Failiest int    // the busiest minute's counts
}

type mark struct {
	X     int
	Label string
	Last  bool // anchored at its end, so that it stays in the picture
}

type bar struct {
	X, Y, W, H int
	Title      string
}

const (
	chartW, chartH = 720, 160
	chartTop       = 10
	chartBottom    = 140 // the baseline
)

func newChart(now time.Time, issued, failed [60]float64) chart {
	c := chart{Width: chartW, Height: chartH}
	top := 1.0
	for i := range 60 {
		top = max(top, issued[i], failed[i])
		c.Issued += int(issued[i])
		c.Failed += int(failed[i])
		c.Busiest = max(c.Busiest, int(issued[i]))
		c.Failiest = max(c.Failiest, int(failed[i]))
	}
	c.Max = int(top)
	scale := float64(chartBottom-chartTop) / top
	step := chartW / 60
	var pts []string
	for i := range 60 {
		h := int(issued[i]*scale + 0.5)
		at := now.Add(time.Duration(i-59) * time.Minute).UTC().Format("15:04")
		c.Bars = append(c.Bars, bar{X: i*step + 1, Y: chartBottom - h, W: step - 2, H: h,
			Title: fmt.Sprintf("%s UTC: %d issued, %d failures", at, int(issued[i]), int(failed[i]))})
		pts = append(pts, fmt.Sprintf("%d,%d", i*step+step/2, chartBottom-int(failed[i]*scale+0.5)))
	}
	c.Line = strings.Join(pts, " ")
	for _, ago := range []int{60, 45, 30, 15, 0} {
		c.Marks = append(c.Marks, mark{X: (60 - ago) * step, Label: now.Add(-time.Duration(ago) * time.Minute).UTC().Format("15:04"), Last: ago == 0})
	}
	return c
}
