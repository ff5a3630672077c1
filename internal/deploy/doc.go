// Package deploy checks the deployment artifacts at the repository root
// (compose.yaml, Dockerfile) against what the binary expects. It has no code
// of its own: only tests.
package deploy
