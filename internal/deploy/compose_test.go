package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]struct {
		Image       string                       `yaml:"image"`
		Build       any                          `yaml:"build"`
		Command     []string                     `yaml:"command"`
		NetworkMode string                       `yaml:"network_mode"`
		Environment map[string]string            `yaml:"environment"`
		DependsOn   map[string]map[string]string `yaml:"depends_on"`
		Healthcheck map[string]any               `yaml:"healthcheck"`
		Ports       []any                        `yaml:"ports"` // short syntax in the file, long in `config`'s output
	} `yaml:"services"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "compose.yaml"))
	require.NoError(t, err)
	return parseCompose(t, b)
}

func parseCompose(t *testing.T, b []byte) composeFile {
	t.Helper()
	var c composeFile
	require.NoError(t, yaml.Unmarshal(b, &c))
	return c
}

// requireWALCapture: compose runs the relay in WAL capture with what it
// needs, and the API without the NOTIFY only a polling relay wants. Without
// any one of these the stack still starts, and then the relay exits (no
// logical decoding, no REPLICATION) or every signup pays for a pg_notify
// nobody listens to.
func requireWALCapture(t *testing.T, c composeFile) {
	t.Helper()
	pg := c.Services["postgres"].Command
	require.True(t, hasArgs(pg, "-c", "wal_level=logical"), "postgres starts with -c wal_level=logical: %q", pg)
	require.Equal(t, "wal", c.Services["relay"].Environment["RELAY_CAPTURE"], "the relay streams the WAL")
	require.Equal(t, "off", c.Services["api"].Environment["OUTBOX_NOTIFY"], "the API does not wake relays that stream")
	// REPLICATION on the login role itself: PostgreSQL 15 does not inherit
	// it from a group role.
	require.Contains(t, strings.Join(c.Services["db-roles"].Command, " "), "ALTER ROLE outboxd_relay LOGIN REPLICATION PASSWORD",
		"db-roles gives the relay's login role REPLICATION")
}

// hasArgs reports whether args holds want, in order, next to each other.
func hasArgs(args []string, want ...string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func TestComposeWiresTheRelayAsTheAPISidecar(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for _, name := range []string{"postgres", "nats", "migrate", "api", "relay", "worker", "mailpit"} {
		require.Contains(t, c.Services, name)
	}
	require.NotEmpty(t, c.Services["postgres"].Healthcheck, "others wait on a healthy database")

	relay := c.Services["relay"]
	require.Equal(t, "service:api", relay.NetworkMode, "the relay shares the API's network namespace")
	require.Equal(t, []string{"relay"}, relay.Command)
	require.Equal(t, c.Services["api"].Image, relay.Image, "sidecar runs the same image")

	require.Equal(t, []string{"migrate", "up"}, c.Services["migrate"].Command)
	require.Equal(t, "service_healthy", c.Services["migrate"].DependsOn["postgres"]["condition"])
	for _, name := range []string{"api", "relay", "worker"} {
		require.Equal(t, "service_completed_successfully", c.Services[name].DependsOn["migrate"]["condition"],
			"%s starts only after the one-shot migration succeeded", name)
		require.Contains(t, c.Services[name].Environment["DATABASE_URL"], "@postgres:5432/")
	}
	require.Equal(t, "mailpit:1025", c.Services["worker"].Environment["SMTP_ADDR"])
	require.NotEmpty(t, c.Services["worker"].Environment["MAIL_FROM"])
}

func TestComposeRunsTheRelayInWALCapture(t *testing.T) {
	t.Parallel()
	requireWALCapture(t, loadCompose(t))
}

// TestComposeConfig runs the real compose CLI over the file where one is
// installed (Debian package docker-compose), and checks the WAL settings in
// the configuration it resolved (anchors merged, YAML 1.1 types: an unquoted
// off would be a boolean there); the structural tests above run everywhere.
func TestComposeConfig(t *testing.T) {
	t.Parallel()
	var cmd *exec.Cmd
	switch {
	case hasDockerCompose():
		cmd = exec.Command("docker", "compose", "-f", "compose.yaml", "config")
	default:
		path, err := exec.LookPath("docker-compose")
		if err != nil {
			t.Log("no compose CLI installed: only the structural test checked compose.yaml")
			return
		}
		cmd = exec.Command(path, "-f", "compose.yaml", "config")
	}
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "compose config rejected compose.yaml: %s", stderr.String())
	requireWALCapture(t, parseCompose(t, out))
}

func hasDockerCompose() bool {
	out, err := exec.Command("docker", "compose", "version").CombinedOutput()
	return err == nil && strings.Contains(string(out), "version")
}
