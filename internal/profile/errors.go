package profile

import "errors"

// Errors of fetching a profile, to be told apart with errors.Is. Get
// returns ErrNotFound; a client of the profile service (such as
// *profilerpc.Client) returns all four, wrapped.
var (
	// ErrNotFound means the user has no profile: no user has the id, or
	// the worker has not created the profile yet.
	ErrNotFound = errors.New("profile not found")
	// ErrTimeout means no reply from the profile service arrived in time:
	// no profile service is running, or it is too slow.
	ErrTimeout = errors.New("no reply from the profile service in time")
	// ErrUnavailable means the request could not be sent: the client is
	// not connected to the broker (yet, or any more).
	ErrUnavailable = errors.New("profile service unreachable")
	// ErrServiceFailed means the profile service answered with an error,
	// such as a database that does not answer.
	ErrServiceFailed = errors.New("the profile service failed")
)
