package test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// The defaults table of docs/operations.md#run-on-kubernetes is what
// helm template renders with the default values, row by row, and names
// every row this test knows.
func TestOperationsDocDefaultsAreRendered(t *testing.T) {
	b, err := os.ReadFile("../../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- chart-defaults")
	end := strings.Index(doc, "<!-- /chart-defaults -->")
	if start < 0 || end < start {
		t.Fatal("docs/operations.md has no chart-defaults table")
	}
	documented := map[string]string{}
	for _, line := range strings.Split(doc[start:end], "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) < 3 || strings.HasPrefix(strings.TrimSpace(cells[0]), "---") || strings.TrimSpace(cells[0]) == "what" {
			continue
		}
		documented[strings.TrimSpace(cells[0])] = strings.TrimSpace(cells[1])
	}

	r := render(t)
	d := r.one(t, "Deployment").(*appsv1.Deployment)
	c := container(t, d, "signal")
	mem := c.Resources
	optional := "off"
	for _, k := range []string{"Ingress", "ServiceMonitor", "HorizontalPodAutoscaler"} {
		if len(r.objs[k]) > 0 {
			optional = "on"
		}
	}
	migration := "none"
	for _, ic := range d.Spec.Template.Spec.InitContainers {
		migration = fmt.Sprintf("init container `%s %s`", strings.TrimPrefix(ic.Command[0], "/usr/local/bin/"), strings.Join(ic.Args, " "))
	}
	var metricsPort int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	pdb := r.one(t, "PodDisruptionBudget").(*policyv1.PodDisruptionBudget)
	probe := func(p *corev1.Probe) string { return "`GET " + p.HTTPGet.Path + "`" }
	rendered := map[string]string{
		"pods":                            fmt.Sprint(*d.Spec.Replicas),
		"memory request / limit":          fmt.Sprintf("%s / %s", mem.Requests.Memory(), mem.Limits.Memory()),
		"`GOMEMLIMIT`":                    mustEnv(t, c, "GOMEMLIMIT"),
		"preStop":                         fmt.Sprintf("sleep %d s", c.Lifecycle.PreStop.Sleep.Seconds),
		"`shutdown.timeout`":              mustEnv(t, c, "SIGNAL_SHUTDOWN_TIMEOUT"),
		"`websocket.close_window`":        mustEnv(t, c, "SIGNAL_WEBSOCKET_CLOSE_WINDOW"),
		"`terminationGracePeriodSeconds`": fmt.Sprint(*d.Spec.Template.Spec.TerminationGracePeriodSeconds),
		"readiness probe":                 probe(c.ReadinessProbe),
		"liveness probe":                  probe(c.LivenessProbe),
		"metrics":                         fmt.Sprintf("port %d", metricsPort),
		"PodDisruptionBudget":             "maxUnavailable " + pdb.Spec.MaxUnavailable.String(),
		"migration":                       migration,
		"Ingress, ServiceMonitor, HorizontalPodAutoscaler": optional,
	}
	for k, want := range rendered {
		got, ok := documented[k]
		switch {
		case !ok:
			t.Errorf("docs/operations.md's chart defaults lack the row %q (rendered: %s)", k, want)
		case got != want:
			t.Errorf("docs/operations.md says %s is %q; the chart renders %q", k, got, want)
		}
	}
	for k := range documented {
		if _, ok := rendered[k]; !ok {
			t.Errorf("docs/operations.md's chart defaults have a row %q this test does not check", k)
		}
	}
}
