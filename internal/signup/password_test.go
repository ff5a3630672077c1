package signup

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/stretchr/testify/require"
)

func TestHasherHashesWithItsParams(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(Params{MemoryKiB: 128, Iterations: 3}, 0)
	require.NoError(t, err)
	hash, err := h.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=128,t=3,p=1$"), hash)
	ok, err := argon2id.ComparePasswordAndHash("correct horse", hash)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = argon2id.ComparePasswordAndHash("wrong horse", hash)
	require.NoError(t, err)
	require.False(t, ok)

	again, err := h.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	require.NotEqual(t, hash, again, "every hash has a fresh salt")
}

func TestHasherBoundsConcurrentHashes(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(MinimalParams, 2)
	require.NoError(t, err)
	require.Equal(t, 2, cap(h.slots))

	// Two hashes in progress (their slots taken): a third waits, and gives
	// up when its context ends.
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = h.Hash(ctx, "correct horse")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// One finishes: the waiting hash proceeds.
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "correct horse")
		done <- err
	}()
	<-h.slots
	require.NoError(t, <-done)
	<-h.slots
	require.Empty(t, h.slots, "every slot is given back")
}

func TestHasherConcurrencyDefaultsToGOMAXPROCS(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(Params{}, 0)
	require.NoError(t, err)
	require.Equal(t, runtime.GOMAXPROCS(0), cap(h.slots))
	require.Equal(t, uint32(MemoryKiBDefault), h.params.Memory)
	require.Equal(t, uint32(IterationsDefault), h.params.Iterations)
}

func TestHasherIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(MinimalParams, 1)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := h.Hash(context.Background(), "correct horse")
			require.NoError(t, err)
		})
	}
	wg.Wait()
}

func TestParamsValidateNamesTheField(t *testing.T) {
	t.Parallel()
	tests := map[string]Params{
		"MemoryKiB":   {MemoryKiB: 4, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32},
		"SaltLength":  {MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLength: 8, KeyLength: 32},
		"KeyLength":   {MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 4},
		"Iterations":  {MemoryKiB: 64, Parallelism: 1, SaltLength: 16, KeyLength: 32},
		"Parallelism": {MemoryKiB: 64, Iterations: 1, SaltLength: 16, KeyLength: 32},
	}
	for field, p := range tests {
		require.ErrorContains(t, p.Validate(), field)
	}
	require.NoError(t, DefaultParams.Validate())
	require.NoError(t, MinimalParams.Validate())
	_, err := NewHasher(Params{SaltLength: 8}, 0)
	require.ErrorContains(t, err, "SaltLength")
	_, err = NewHasher(Params{}, -1)
	require.Error(t, err)
}
