package main

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

func readMetric(t *testing.T, name string) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("metric %s not supported", name)
	}
	return s[0].Value.Uint64()
}

var sink []byte

// cyclesWhileAllocating counts the collector's cycles while 64 MiB of
// short-lived garbage is allocated in 1 KiB pieces.
func cyclesWhileAllocating(t *testing.T) uint64 {
	t.Helper()
	runtime.GC()
	before := readMetric(t, "/gc/cycles/automatic:gc-cycles")
	for range 64 << 10 {
		sink = make([]byte, 1024)
	}
	sink = nil
	return readMetric(t, "/gc/cycles/automatic:gc-cycles") - before
}

// TestHeapFloor: with a floor, garbage that would have started many
// collections starts at most one or two; stopping the floor brings Go's
// default pacing back; and GOGC set in the environment turns it off.
func TestHeapFloor(t *testing.T) {
	t.Setenv("GOGC", "") // as a server starts, without GOGC
	without := cyclesWhileAllocating(t)
	stop := startHeapFloor(256 << 20)
	with := cyclesWhileAllocating(t)
	if gogc := readMetric(t, "/gc/gogc:percent"); gogc <= 100 {
		t.Errorf("GOGC %d under a 256 MiB floor", gogc)
	}
	if goal := readMetric(t, "/gc/heap/goal:bytes"); goal < 200<<20 {
		t.Errorf("heap goal %d MiB under a 256 MiB floor", goal>>20)
	}
	stop()
	after := cyclesWhileAllocating(t)
	t.Logf("cycles while allocating 64 MiB: %d without a floor, %d with, %d after", without, with, after)
	if without < 4 || after < 4 {
		t.Fatalf("only %d and %d cycles without a floor: the test's garbage is too small to tell", without, after)
	}
	if with > 2 {
		t.Errorf("%d cycles under a 256 MiB floor, want at most 2", with)
	}
	if gogc := readMetric(t, "/gc/gogc:percent"); gogc != 100 {
		t.Errorf("GOGC %d after the floor stopped, want 100", gogc)
	}

	t.Setenv("GOGC", "100")
	stop = startHeapFloor(256 << 20)
	defer stop()
	if gogc := readMetric(t, "/gc/gogc:percent"); gogc != 100 {
		t.Errorf("GOGC %d with GOGC=100 in the environment, want 100: the operator's choice wins", gogc)
	}
}
