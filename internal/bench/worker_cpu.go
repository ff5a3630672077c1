package bench

import (
	"fmt"
	"runtime"
)

// cpuRows are the worker table's rows of where each drain's CPU goes, per
// user, beside the raw mail loop's per mail, and the ceiling they set: the
// email drain with a worker that cost no CPU at all, which still pays
// PostgreSQL's and the bench process's (NATS, the SMTP sink) share. No
// rows, and a note saying so, without /proc.
func cpuRows(n int, f workerFigures) ([]Row, string) {
	if f.drainCPU == nil || f.emailCPU == nil || f.rawMailCPU == nil || f.emailDrain <= 0 || f.rawMail <= 0 {
		return nil, "CPU: not measured (no /proc on this system): no CPU rows"
	}
	cores := float64(runtime.NumCPU())
	perItem := func(seconds float64) float64 { return seconds * 1e6 / float64(n) }
	busy := func(machine, rate float64) float64 { return 100 * machine / (cores * float64(n) / rate) }
	var rows []Row
	for _, d := range []struct {
		label string
		cpu   *cpuTimes
		rate  float64
	}{{"profile + audit", f.drainCPU, f.drain}, {"email + profile + audit", f.emailCPU, f.emailDrain}} {
		for _, part := range []struct {
			name    string
			seconds float64
		}{
			{"worker process", d.cpu.worker},
			{"PostgreSQL", d.cpu.postgres},
			{"bench process (NATS server, SMTP sink, count polls)", d.cpu.bench},
			{"whole machine", d.cpu.machine},
		} {
			rows = append(rows, Row{Figure: fmt.Sprintf("drain, %s: CPU per user, %s", d.label, part.name), Unit: "µs", Ours: perItem(part.seconds)})
		}
		rows = append(rows, Row{Figure: fmt.Sprintf("drain, %s: the machine's cores busy", d.label), Unit: "%", Ours: busy(d.cpu.machine, d.rate)})
	}
	raw := f.rawMailCPU
	others := perItem(f.emailCPU.postgres + f.emailCPU.bench)
	var freeWorker float64
	if others > 0 {
		freeWorker = cores * 1e6 / others
	}
	rows = append(rows,
		Row{Figure: "raw mail loop: CPU per mail, bench process (mailer and SMTP sink)", Unit: "µs", Ours: perItem(raw.bench)},
		Row{Figure: "raw mail loop: CPU per mail, whole machine", Unit: "µs", Ours: perItem(raw.machine)},
		Row{Figure: "raw mail loop: the machine's cores busy", Unit: "%", Ours: busy(raw.machine, f.rawMail)},
		Row{Figure: fmt.Sprintf("drain, email + profile + audit, with a worker costing no CPU: %.0f cores / (PostgreSQL + bench process CPU per user) vs raw mail loop", cores),
			Unit: "users/s", Ours: freeWorker, Baseline: f.rawMail},
	)
	return rows, fmt.Sprintf("CPU: from /proc, over each drain (the worker's start to its last effect seen) and the raw mail loop (4 sends at once): the child worker's utime + stime; PostgreSQL's, summed over every process named postgres (the postmaster's reaped children included), so the cluster's other work counts too; the bench process's own (embedded NATS server, SMTP sink, count polls, and in the raw mail loop the mailer); the whole machine's busy time (all but idle and iowait) of its %.0f cores; µs per user = CPU seconds × 10^6 / %d. The worker-costing-no-CPU row divides the cores by what the rest of the email drain costs a user: what that drain could reach if the worker's own share were zero and nothing else changed", cores, n)
}
