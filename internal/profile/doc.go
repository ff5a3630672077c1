// Package profile is the domain of user profiles: the Profile type, the
// errors of fetching one, and the SQL of the profiles table.
//
// The worker creates a user's profile from the user.created event with
// Create, inside the transaction that records the message in its inbox, so
// that the profile and the record commit together. The profile service
// (internal/profilerpc) reads profiles with Get and sends them over the
// broker; the API asks it through any source returning a Profile and the
// errors of this package, and maps those errors to HTTP statuses. The
// package imports no broker: depending on it links no transport.
package profile
