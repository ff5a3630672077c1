package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
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
		Ports       []string                     `yaml:"ports"`
	} `yaml:"services"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "compose.yaml"))
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(b, &c))
	return c
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

// TestComposeConfig runs the real compose CLI over the file where one is
// installed (Debian package docker-compose); the structural test above runs
// everywhere.
func TestComposeConfig(t *testing.T) {
	t.Parallel()
	var cmd *exec.Cmd
	switch {
	case hasDockerCompose():
		cmd = exec.Command("docker", "compose", "-f", "compose.yaml", "config", "--quiet")
	default:
		path, err := exec.LookPath("docker-compose")
		if err != nil {
			t.Log("no compose CLI installed: only the structural test checked compose.yaml")
			return
		}
		cmd = exec.Command(path, "-f", "compose.yaml", "config", "--quiet")
	}
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "compose config rejected compose.yaml: %s", out)
}

func hasDockerCompose() bool {
	out, err := exec.Command("docker", "compose", "version").CombinedOutput()
	return err == nil && strings.Contains(string(out), "version")
}
