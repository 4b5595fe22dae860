package gpu

import (
	"math/rand"
	"testing"
	"time"
)

// simulate runs jobs (all ready at time zero, in this order) through the
// scheduler on simulated time and returns the makespan and the GPU-time
// the jobs used. It fails if a device is ever held twice.
func simulate(tb testing.TB, inv *Inventory, jobs []Job, durs []time.Duration) (makespan, busy time.Duration) {
	s := newSched(inv)
	t0 := time.Unix(0, 0)
	now := t0
	dur := map[*job]time.Duration{}
	for i, j := range jobs {
		q, err := s.submit(j)
		if err != nil {
			tb.Fatal(err)
		}
		dur[q] = durs[i]
		busy += durs[i] * time.Duration(j.GPUs)
	}
	var running []*job
	for len(s.queue) > 0 || len(running) > 0 {
		running = append(running, s.step(now)...)
		held := map[int]bool{}
		for _, r := range running {
			for _, d := range r.devs {
				if held[d] {
					tb.Fatalf("device %d held twice", d)
				}
				held[d] = true
			}
		}
		if len(running) == 0 {
			tb.Fatal("jobs wait but nothing runs: deadlock")
		}
		next := running[0].start.Add(dur[running[0]])
		for _, r := range running {
			if e := r.start.Add(dur[r]); e.Before(next) {
				next = e
			}
		}
		now = next
		var still []*job
		for _, r := range running {
			if !r.start.Add(dur[r]).After(now) {
				s.finish(r)
			} else {
				still = append(still, r)
			}
		}
		running = still
	}
	return now.Sub(t0), busy
}

// mix is 200 jobs of 1/2/4/8 GPUs (half, a quarter, 15%, 10%) lasting
// 1 to 60 minutes.
func mix(seed int64) ([]Job, []time.Duration) {
	rng := rand.New(rand.NewSource(seed))
	var jobs []Job
	var durs []time.Duration
	for range 200 {
		var n int
		switch p := rng.Float64(); {
		case p < 0.5:
			n = 1
		case p < 0.75:
			n = 2
		case p < 0.9:
			n = 4
		default:
			n = 8
		}
		d := time.Duration(1+rng.Intn(60)) * time.Minute
		jobs = append(jobs, Job{GPUs: n})
		durs = append(durs, d)
	}
	return jobs, durs
}

// BenchmarkSchedule200 simulates 200 mixed jobs on 8 mock GPUs and reports
// utilization (GPU-time used / 8 x makespan) and the makespan against its
// lower bound max(total GPU-time / 8, longest job), with run-time
// estimates known (from earlier builds) and unknown (first build).
func BenchmarkSchedule200(b *testing.B) {
	inv := open(b, dgx8(b)).Inventory
	for _, known := range []bool{true, false} {
		name := "estimates-unknown"
		if known {
			name = "estimates-known"
		}
		b.Run(name, func(b *testing.B) {
			var util, ratio float64
			for i := range b.N {
				jobs, durs := mix(int64(i % 20))
				var longest, total time.Duration
				for k := range jobs {
					if known {
						jobs[k].Estimate = durs[k]
					}
					longest = max(longest, durs[k])
					total += durs[k] * time.Duration(jobs[k].GPUs)
				}
				span, busy := simulate(b, inv, jobs, durs)
				lower := max(total/8, longest)
				util += float64(busy) / float64(8*span)
				ratio += float64(span) / float64(lower)
			}
			b.ReportMetric(100*util/float64(b.N), "util-%")
			b.ReportMetric(ratio/float64(b.N), "makespan/bound")
		})
	}
}

// The simulation itself is checked: every job runs, no device twice.
func TestSimulationRunsEveryJob(t *testing.T) {
	inv := open(t, dgx8(t)).Inventory
	jobs, durs := mix(1)
	span, busy := simulate(t, inv, jobs, durs)
	if span <= 0 || busy <= 0 || float64(busy) > float64(8*span) {
		t.Errorf("makespan %v, busy %v", span, busy)
	}
}
