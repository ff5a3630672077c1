package signup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/alexedwards/argon2id"
)

// Argon2id defaults: OWASP's password storage recommendation (19 MiB, two
// passes, one lane).
const (
	// MemoryKiBDefault is the default Params.MemoryKiB.
	MemoryKiBDefault = 19 * 1024
	// IterationsDefault is the default Params.Iterations.
	IterationsDefault = 2
	// ParallelismDefault is the default Params.Parallelism.
	ParallelismDefault = 1
	// SaltLengthDefault is the default Params.SaltLength.
	SaltLengthDefault = 16
	// KeyLengthDefault is the default Params.KeyLength.
	KeyLengthDefault = 32
)

// Params are argon2id's cost parameters. Changing them affects new hashes
// only: each hash records the parameters it was made with.
type Params struct {
	// MemoryKiB is the memory one hash uses, in KiB. Defaults to
	// MemoryKiBDefault (19 MiB).
	MemoryKiB uint32
	// Iterations is the number of passes over the memory. Defaults to
	// IterationsDefault.
	Iterations uint32
	// Parallelism is the number of lanes (threads) of one hash. Defaults to
	// ParallelismDefault.
	Parallelism uint8
	// SaltLength is the random salt's length in bytes. Defaults to
	// SaltLengthDefault.
	SaltLength uint32
	// KeyLength is the derived key's length in bytes. Defaults to
	// KeyLengthDefault.
	KeyLength uint32
}

// DefaultParams are OWASP's recommended argon2id parameters.
var DefaultParams = Params{
	MemoryKiB:   MemoryKiBDefault,
	Iterations:  IterationsDefault,
	Parallelism: ParallelismDefault,
	SaltLength:  SaltLengthDefault,
	KeyLength:   KeyLengthDefault,
}

// MinimalParams make hashing nearly free. They are for tests and benchmarks
// only: a stolen hash made with them is cheap to crack.
var MinimalParams = Params{
	MemoryKiB:   64,
	Iterations:  1,
	Parallelism: 1,
	SaltLength:  SaltLengthDefault,
	KeyLength:   KeyLengthDefault,
}

// WithDefaults returns p with every zero field set to its default.
func (p Params) WithDefaults() Params {
	return Params{
		MemoryKiB:   cmp.Or(p.MemoryKiB, MemoryKiBDefault),
		Iterations:  cmp.Or(p.Iterations, IterationsDefault),
		Parallelism: cmp.Or(p.Parallelism, ParallelismDefault),
		SaltLength:  cmp.Or(p.SaltLength, SaltLengthDefault),
		KeyLength:   cmp.Or(p.KeyLength, KeyLengthDefault),
	}
}

// Validate reports the first parameter that argon2id cannot use or that
// makes a weak hash.
func (p Params) Validate() error {
	switch {
	case p.MemoryKiB < 8*uint32(p.Parallelism):
		return fmt.Errorf("argon2 MemoryKiB must be at least 8 per lane (Parallelism), got %d", p.MemoryKiB)
	case p.MemoryKiB > 4<<20:
		return fmt.Errorf("argon2 MemoryKiB must be at most 4 GiB, got %d KiB", p.MemoryKiB)
	case p.Iterations < 1:
		return errors.New("argon2 Iterations must be at least 1")
	case p.Parallelism < 1:
		return errors.New("argon2 Parallelism must be at least 1")
	case p.SaltLength < 16:
		return fmt.Errorf("argon2 SaltLength must be at least 16 bytes, got %d", p.SaltLength)
	case p.KeyLength < 16:
		return fmt.Errorf("argon2 KeyLength must be at least 16 bytes, got %d", p.KeyLength)
	}
	return nil
}

// Hasher hashes passwords with argon2id, at most a fixed number at a time.
// Each hash is CPU and memory bound; running more at once than there are
// cores only makes every one of them slower and multiplies the memory in
// use, so callers beyond the limit queue instead.
type Hasher struct {
	params argon2id.Params
	slots  chan struct{}
}

// NewHasher returns a Hasher with params (zero fields take their defaults)
// running at most concurrency hashes at once (0: runtime.GOMAXPROCS).
func NewHasher(params Params, concurrency int) (*Hasher, error) {
	params = params.WithDefaults()
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if concurrency < 0 {
		return nil, fmt.Errorf("hash concurrency must not be negative, got %d", concurrency)
	}
	concurrency = cmp.Or(concurrency, runtime.GOMAXPROCS(0))
	return &Hasher{
		params: argon2id.Params{
			Memory:      params.MemoryKiB,
			Iterations:  params.Iterations,
			Parallelism: params.Parallelism,
			SaltLength:  params.SaltLength,
			KeyLength:   params.KeyLength,
		},
		slots: make(chan struct{}, concurrency),
	}, nil
}

// Hash returns the PHC-encoded argon2id hash of password, with a fresh salt.
// It waits for a free slot until ctx ends, and then returns ctx's error.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	// A request that has already timed out must not take a slot.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("wait to hash password: %w", err)
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("wait to hash password: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	hash, err := argon2id.CreateHash(password, &h.params)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}
