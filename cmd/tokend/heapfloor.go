package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Go's collector starts a cycle each time the heap has grown by GOGC
// percent (100) of what the last cycle left live, and never below a 4 MiB
// goal. tokend's live heap is a few MiB, so under load a cycle started
// every 20 ms or so: the collector ran half of the time, stopping the
// world at each start and end, and every request that allocated during a
// cycle was made to help mark (an assist) and waited for it. A trace of
// tokend under wrk showed those waits as the largest part of the latency
// tail (BENCHMARKS.md). A heap floor lets the heap grow to floor bytes
// before a cycle starts, so cycles come about floor/(allocation rate)
// apart; once the live heap itself is large, the usual GOGC rule holds
// unchanged. The price is memory: up to floor bytes of garbage.

// maxFloorPercent bounds the GOGC a floor sets.
const maxFloorPercent = 10000

// goHeapMinimum is Go's smallest heap goal at GOGC=100; it scales with
// GOGC (runtime/mgcpacer.go), so a GOGC of floor*100/goHeapMinimum alone
// makes the goal at least floor.
const goHeapMinimum = 4 << 20

// heapFloor keeps GOGC at what makes the next cycle's heap goal at least
// floor bytes. It re-reads the live heap after every cycle (a finalizer
// runs once per cycle) and changes GOGC only when that moves it by more
// than a tenth, since each change stops the world for a moment.
type heapFloor struct {
	floor   uint64
	base    int // GOGC without the floor
	stopped atomic.Bool

	mu      sync.Mutex
	percent int
	sample  []metrics.Sample
}

// startHeapFloor applies a heap floor of floor bytes until stop is called.
// It does nothing for a floor of 0, or when the environment sets GOGC: the
// operator's own choice wins.
func startHeapFloor(floor uint64) (stop func()) {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	h := &heapFloor{floor: floor, base: 100, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	h.adjust()
	h.arm()
	return func() {
		h.stopped.Store(true)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.percent != h.base {
			debug.SetGCPercent(h.base)
			h.percent = h.base
		}
	}
}

// sentinel is an object nothing points to, whose finalizer therefore runs
// after the next cycle. It is larger than the tiny allocator's blocks,
// which would batch it with other objects and delay its finalizer.
type sentinel struct{ _ [64]byte }

func (h *heapFloor) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if h.stopped.Load() {
			return
		}
		h.adjust()
		h.arm()
	})
}

// adjust sets GOGC from the live heap the last cycle left.
func (h *heapFloor) adjust() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped.Load() {
		return
	}
	metrics.Read(h.sample)
	live := uint64(0)
	if h.sample[0].Value.Kind() == metrics.KindUint64 {
		live = h.sample[0].Value.Uint64()
	}
	p := h.base
	if live < h.floor {
		// The goal is max(goHeapMinimum*p/100, live*(1+p/100)): the
		// smaller of the two GOGCs that bring either to the floor.
		need := int(h.floor * 100 / goHeapMinimum)
		if live > 0 {
			need = min(need, int((h.floor-live)*100/live))
		}
		p = max(h.base, min(maxFloorPercent, need))
	}
	if d := p - h.percent; d*10 > h.percent || -d*10 > h.percent {
		debug.SetGCPercent(p)
		h.percent = p
	}
}
