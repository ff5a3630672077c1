package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseProcStatCountsFieldsFromTheLastParenthesis(t *testing.T) {
	t.Parallel()
	// A comm with a space and a parenthesis of its own; utime 250, stime
	// 50, cutime 7, cstime 3 ticks.
	line := "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 99 1000 10 18446744073709551615\n"
	p, err := parseProcStat([]byte(line))
	require.NoError(t, err)
	require.Equal(t, "odd) name", p.comm)
	require.InDelta(t, 3.0, p.own(), 1e-9)
	require.InDelta(t, 0.1, p.children, 1e-9)

	_, err = parseProcStat([]byte("4242 (short) S 1 2 3\n"))
	require.ErrorContains(t, err, "fields after comm")
}

func TestParseMachineBusyLeavesOutIdleAndIOWait(t *testing.T) {
	t.Parallel()
	busy, err := parseMachineBusy([]byte("cpu  100 10 40 5000 300 5 5 40 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	require.NoError(t, err)
	require.InDelta(t, 2.0, busy, 1e-9) // (100+10+40+5+5+40) / 100

	_, err = parseMachineBusy([]byte("intr 1 2 3\n"))
	require.ErrorContains(t, err, "not the cpu line")
}
