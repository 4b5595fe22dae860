package gpu

import (
	"fmt"
	"sort"
	"time"
)

// Job is a request for GPUs.
type Job struct {
	GPUs     int
	Memory   uint64        // each device must have at least this much (0 = any)
	Model    string        // model class the devices must have ("" = any)
	Estimate time.Duration // expected run time, 0 = unknown
}

// job is a Job in the scheduler.
type job struct {
	Job
	id       int
	eligible []int // devices that meet Memory and Model
	devs     []int // when started
	start    time.Time
}

// sched is the allocation policy, with no locking and no clock of its own
// so that the simulation benchmark drives it with simulated time.
//
// Policy: first come, first served, with EASY backfilling. Jobs start in
// arrival order while they fit. The first job that does not fit gets a
// reservation: the concrete devices it will get and the time (shadow) by
// which the running jobs holding them are expected to end. A later job may
// jump ahead only if it fits on devices outside that reservation, or if
// it is expected to end before the shadow time. So small jobs fill the
// gaps (utilization) and never delay the oldest blocked job (no
// starvation: an 8-GPU job waits at most for the jobs already running).
// Jobs of unknown duration are never assumed to end before the shadow.
type sched struct {
	inv     *Inventory
	owner   []int // device -> job id, -1 free
	queue   []*job
	running map[int]*job
	nextID  int
}

func newSched(inv *Inventory) *sched {
	s := &sched{inv: inv, owner: make([]int, len(inv.Devices)), running: map[int]*job{}}
	for i := range s.owner {
		s.owner[i] = -1
	}
	return s
}

// submit queues a job, or says why no device set of this machine can
// ever run it.
func (s *sched) submit(j Job) (*job, error) {
	if j.GPUs <= 0 {
		return nil, fmt.Errorf("a GPU job needs at least one GPU, not %d", j.GPUs)
	}
	q := &job{Job: j, id: s.nextID}
	s.nextID++
	for i, d := range s.inv.Devices {
		if d.MIG || (j.Model != "" && d.Model != j.Model) || d.MemoryTotal < j.Memory {
			continue
		}
		q.eligible = append(q.eligible, i)
	}
	if len(q.eligible) < j.GPUs {
		return nil, fmt.Errorf("needs %s but this machine has %d such GPU(s) of %d", describe(j), len(q.eligible), len(s.inv.Devices))
	}
	s.queue = append(s.queue, q)
	return q, nil
}

func describe(j Job) string {
	s := fmt.Sprintf("%d GPU(s)", j.GPUs)
	if j.Model != "" {
		s = fmt.Sprintf("%d %s GPU(s)", j.GPUs, j.Model)
	}
	if j.Memory > 0 {
		s += fmt.Sprintf(" with at least %d MiB each", j.Memory>>20)
	}
	return s
}

// cancel removes a queued job.
func (s *sched) cancel(q *job) {
	for i, x := range s.queue {
		if x == q {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}

// finish frees a running job's devices.
func (s *sched) finish(q *job) {
	if s.running[q.id] != q {
		return
	}
	delete(s.running, q.id)
	for _, d := range q.devs {
		s.owner[d] = -1
	}
}

// step starts what the policy allows at time now and returns those jobs.
func (s *sched) step(now time.Time) []*job {
	var started, waiting []*job
	var reserved map[int]bool
	var shadow time.Time // zero: unknown
	for _, q := range s.queue {
		var devs []int
		switch {
		case reserved == nil:
			if devs = s.place(q, nil); devs == nil {
				reserved, shadow = s.reserve(q, now)
			}
		default:
			devs = s.place(q, reserved)
			if devs == nil && q.Estimate > 0 && !shadow.IsZero() && !now.Add(q.Estimate).After(shadow) {
				devs = s.place(q, nil)
			}
		}
		if devs == nil {
			waiting = append(waiting, q)
			continue
		}
		q.devs, q.start = devs, now
		for _, d := range devs {
			s.owner[d] = q.id
		}
		s.running[q.id] = q
		started = append(started, q)
	}
	s.queue = waiting
	return started
}

// reserve picks the devices the blocked job q will get first, and when:
// the free ones plus those of the running jobs expected to end soonest.
func (s *sched) reserve(q *job, now time.Time) (map[int]bool, time.Time) {
	pool := map[int]bool{}
	for _, d := range q.eligible {
		if s.owner[d] < 0 {
			pool[d] = true
		}
	}
	var run []*job
	for _, r := range s.running {
		run = append(run, r)
	}
	sort.Slice(run, func(a, b int) bool { // known ends first, soonest first
		ea, eb := end(run[a]), end(run[b])
		if ea.IsZero() != eb.IsZero() {
			return !ea.IsZero()
		}
		if !ea.Equal(eb) {
			return ea.Before(eb)
		}
		return run[a].id < run[b].id
	})
	shadow := now
	for _, r := range run {
		if len(pool) >= q.GPUs {
			break
		}
		added := false
		for _, d := range r.devs {
			if contains(q.eligible, d) {
				pool[d], added = true, true
			}
		}
		if added {
			if e := end(r); e.IsZero() || shadow.IsZero() {
				shadow = time.Time{}
			} else if e.After(shadow) {
				shadow = e
			}
		}
	}
	cand := make([]int, 0, len(pool))
	for d := range pool {
		cand = append(cand, d)
	}
	sort.Ints(cand)
	res := map[int]bool{}
	for _, d := range s.best(cand, q.GPUs) {
		res[d] = true
	}
	return res, shadow
}

func end(j *job) time.Time {
	if j.Estimate <= 0 {
		return time.Time{}
	}
	return j.start.Add(j.Estimate)
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// place chooses free eligible devices for q outside avoid, or nil.
func (s *sched) place(q *job, avoid map[int]bool) []int {
	var cand []int
	for _, d := range q.eligible {
		if s.owner[d] < 0 && !avoid[d] {
			cand = append(cand, d)
		}
	}
	if len(cand) < q.GPUs {
		return nil
	}
	return s.best(cand, q.GPUs)
}

// best picks n of the candidate devices: the set whose pairs are closest
// (NVLink first), and among equals the one that leaves the best-connected
// devices free for later, bigger jobs. Candidates number at most a
// machine's GPUs, so a greedy search from every seed is cheap.
func (s *sched) best(cand []int, n int) []int {
	if n >= len(cand) {
		return append([]int(nil), cand...)
	}
	var bestSet []int
	bestCost, bestLeft := 0, 0
	for _, seed := range cand {
		set := []int{seed}
		in := map[int]bool{seed: true}
		cost := 0
		for len(set) < n {
			pick, pickCost := -1, 0
			for _, c := range cand {
				if in[c] {
					continue
				}
				cc := 0
				for _, x := range set {
					cc += s.inv.distance(x, c)
				}
				if pick < 0 || cc < pickCost {
					pick, pickCost = c, cc
				}
			}
			set = append(set, pick)
			in[pick] = true
			cost += pickCost
		}
		// How well the free devices left behind stay connected: lower is
		// better for the next big job.
		left := 0
		for _, a := range cand {
			for _, b := range cand {
				if a < b && !in[a] && !in[b] {
					left += s.inv.distance(a, b)
				}
			}
		}
		if bestSet == nil || cost < bestCost || cost == bestCost && left < bestLeft {
			bestSet, bestCost, bestLeft = set, cost, left
		}
	}
	sort.Ints(bestSet)
	return bestSet
}
