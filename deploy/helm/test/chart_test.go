package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const chart = "../signal"

func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("SIGNAL_HELM")
	if bin == "" {
		t.Fatal("SIGNAL_HELM is not set: run `make chart-check` (installs the pinned helm, then this test)")
	}
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Offline: helm reads no repository, and keeps its files out of $HOME.
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir)
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// types maps each kind the chart may render to its API version and Go type.
var types = map[string]struct {
	apiVersion string
	new        func() any
}{
	"ConfigMap":               {"v1", func() any { return &corev1.ConfigMap{} }},
	"Secret":                  {"v1", func() any { return &corev1.Secret{} }},
	"Service":                 {"v1", func() any { return &corev1.Service{} }},
	"Deployment":              {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"Ingress":                 {"networking.k8s.io/v1", func() any { return &networkingv1.Ingress{} }},
	"PodDisruptionBudget":     {"policy/v1", func() any { return &policyv1.PodDisruptionBudget{} }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	"ServiceMonitor":          {"monitoring.coreos.com/v1", func() any { return &monitoringv1.ServiceMonitor{} }},
}

// rendered is a chart's manifests, decoded.
type rendered struct {
	objs  map[string][]any // by kind
	notes string
}

func (r rendered) one(t *testing.T, kind string) any {
	t.Helper()
	if len(r.objs[kind]) != 1 {
		t.Fatalf("%d %s rendered, want 1", len(r.objs[kind]), kind)
	}
	return r.objs[kind][0]
}

// render runs helm template with the given values files and decodes every
// manifest strictly: an unknown field, a wrong type or an unknown kind fails.
func render(t *testing.T, values ...string) rendered {
	t.Helper()
	args := []string{"template", "signal", chart, "--namespace", "apps"}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	out := helm(t, args...)
	r := rendered{objs: map[string][]any{}}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("manifest is not YAML: %v\n%s", err, doc)
		}
		ty, ok := types[head.Kind]
		if !ok {
			t.Fatalf("unexpected kind %q:\n%s", head.Kind, doc)
		}
		if head.APIVersion != ty.apiVersion {
			t.Errorf("%s has apiVersion %s, want %s", head.Kind, head.APIVersion, ty.apiVersion)
		}
		obj := ty.new()
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode strictly into its API type: %v\n%s", head.Kind, err, doc)
		}
		r.objs[head.Kind] = append(r.objs[head.Kind], obj)
	}
	return r
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestLint(t *testing.T) {
	helm(t, "lint", "--strict", chart)
	helm(t, "lint", "--strict", chart, "-f", "testdata/full-values.yaml")
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func container(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	for _, c := range append(d.Spec.Template.Spec.Containers, d.Spec.Template.Spec.InitContainers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// checkDeployment checks what must hold for any values.
func checkDeployment(t *testing.T, r rendered) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := r.one(t, "Deployment").(*appsv1.Deployment)
	pod := d.Spec.Template
	c := container(t, d, "signal")

	// The drain fits: preStop sleep, then shutdown.timeout (which contains
	// websocket.close_window) end before the grace period's SIGKILL.
	timeout, err := time.ParseDuration(mustEnv(t, c, "SIGNAL_SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatal(err)
	}
	window, err := time.ParseDuration(mustEnv(t, c, "SIGNAL_WEBSOCKET_CLOSE_WINDOW"))
	if err != nil {
		t.Fatal(err)
	}
	if window >= timeout {
		t.Errorf("websocket.close_window %s is not within shutdown.timeout %s", window, timeout)
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep: the pod would get SIGTERM while proxies still send it clients")
	}
	sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	if sleep < time.Second || grace <= sleep+timeout {
		t.Errorf("terminationGracePeriodSeconds %s must exceed preStop %s + shutdown.timeout %s", grace, sleep, timeout)
	}

	// GOMEMLIMIT below the container's memory limit, and not far below.
	if limit, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		v := mustEnv(t, c, "GOMEMLIMIT")
		q, err := resource.ParseQuantity(strings.TrimSuffix(v, "B"))
		if err != nil {
			t.Fatalf("GOMEMLIMIT %q: %v", v, err)
		}
		if ratio := float64(q.Value()) / float64(limit.Value()); ratio >= 1 || ratio < 0.7 {
			t.Errorf("GOMEMLIMIT %s is %.0f%% of the memory limit %s", v, 100*ratio, limit.String())
		}
	}

	// Probes and ports.
	scheme := corev1.URISchemeHTTP
	if _, tls := env(c, "SIGNAL_HTTP_TLS_CERT_FILE"); tls {
		scheme = corev1.URISchemeHTTPS
	}
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "http" || p.HTTPGet.Scheme != scheme {
			t.Errorf("probe on %s: %+v (scheme %s)", name, p, scheme)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if a := mustEnv(t, c, "SIGNAL_HTTP_ADDR"); a != fmt.Sprintf(":%d", ports["http"]) {
		t.Errorf("http.addr %q does not listen on all interfaces at the http port %d", a, ports["http"])
	}
	if a := mustEnv(t, c, "SIGNAL_HTTP_METRICS_ADDR"); a != fmt.Sprintf(":%d", ports["metrics"]) || ports["metrics"] == ports["http"] || ports["metrics"] == 0 {
		t.Errorf("http.metrics_addr %q, ports %v: metrics must have a port of their own", a, ports)
	}
	sc := c.SecurityContext
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("pod must run as non-root with a read-only root file system")
	}
	// Selectors: the pods are what the Services and the PDB select.
	podLabels := labels.Set(pod.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector does not match its pods")
	}
	for _, o := range r.objs["Service"] {
		s := o.(*corev1.Service)
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects no pod", s.Name)
		}
		for _, p := range s.Spec.Ports {
			if _, ok := ports[p.TargetPort.String()]; !ok {
				t.Errorf("Service %s targets port %s, which the pod does not name", s.Name, p.TargetPort.String())
			}
		}
	}
	for _, o := range r.objs["PodDisruptionBudget"] {
		p := o.(*policyv1.PodDisruptionBudget)
		if sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("the PodDisruptionBudget selects no pod")
		}
	}
	// Secrets and config reach the container; the ConfigMap is YAML.
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Errorf("envFrom %v: want the Secret", c.EnvFrom)
	}
	cm := r.one(t, "ConfigMap").(*corev1.ConfigMap)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["signal.yaml"]), &cfg); err != nil {
		t.Errorf("signal.yaml of the ConfigMap: %v", err)
	}
	return d, c
}

func mustEnv(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	v, ok := env(c, name)
	if !ok {
		t.Fatalf("container %s has no %s", c.Name, name)
	}
	return v
}

func TestDefaultValues(t *testing.T) {
	r := render(t)
	d, _ := checkDeployment(t, r)
	for _, kind := range []string{"Ingress", "ServiceMonitor", "HorizontalPodAutoscaler"} {
		if len(r.objs[kind]) != 0 {
			t.Errorf("%s rendered by default: it is optional", kind)
		}
	}
	m := container(t, d, "migrate")
	if strings.Join(append(m.Command, m.Args...), " ") != "/usr/local/bin/signalctl migrate up" {
		t.Errorf("migration runs %q %q", m.Command, m.Args)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v: want 2 or more by default (a PDB of one pod blocks node drains)", d.Spec.Replicas)
	}
}

func TestFullValues(t *testing.T) {
	r := render(t, "testdata/full-values.yaml")
	d, c := checkDeployment(t, r)
	if d.Spec.Replicas != nil {
		t.Errorf("replicas set with the HPA enabled: every upgrade would reset the HPA's choice")
	}
	for k, want := range map[string]string{
		"SIGNAL_HTTP_TRUSTED_PROXIES": "10.244.0.0/16,fd00::/8",
		"SIGNAL_OTEL_ENDPOINT":        "http://otel-collector.observability:4318",
		"SIGNAL_HTTP_TLS_CERT_FILE":   "/etc/signal/tls/tls.crt",
		"SIGNAL_HTTP_TLS_KEY_FILE":    "/etc/signal/tls/tls.key",
		"SIGNAL_KAFKA_BROKERS":        "kafka-0.kafka:9092,kafka-1.kafka:9092",
		"GOMEMLIMIT":                  "1843MiB",
	} {
		if got, _ := env(c, k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	var tlsMounted bool
	for _, m := range c.VolumeMounts {
		tlsMounted = tlsMounted || (m.MountPath == "/etc/signal/tls" && m.SubPath == "")
	}
	if !tlsMounted {
		t.Error("the TLS Secret is not mounted as a directory (a subPath mount never sees a renewal)")
	}
	if len(d.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("migration.enabled false still renders init containers")
	}
	if c.EnvFrom[0].SecretRef.Name != "signal-secrets" || len(r.objs["Secret"]) != 0 {
		t.Errorf("existingSecret: envFrom %v, %d Secrets rendered", c.EnvFrom, len(r.objs["Secret"]))
	}

	in := r.one(t, "Ingress").(*networkingv1.Ingress)
	for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if in.Annotations[a] != "3600" {
			t.Errorf("Ingress %s=%q, want 3600 (WebSocket connections)", a, in.Annotations[a])
		}
	}
	if in.Annotations["nginx.ingress.kubernetes.io/backend-protocol"] != "HTTPS" {
		t.Error("with TLS in the pod the Ingress must speak HTTPS to it")
	}
	be := in.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	if be.Name != "signal" || be.Port.Name != "http" {
		t.Errorf("Ingress backend %+v", be)
	}

	hpa := r.one(t, "HorizontalPodAutoscaler").(*autoscalingv2.HorizontalPodAutoscaler)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.MaxReplicas != 6 {
		t.Errorf("HPA target %+v, max %d", hpa.Spec.ScaleTargetRef, hpa.Spec.MaxReplicas)
	}
	sm := r.one(t, "ServiceMonitor").(*monitoringv1.ServiceMonitor)
	var metricsSvc *corev1.Service
	for _, o := range r.objs["Service"] {
		if s := o.(*corev1.Service); labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
			if metricsSvc != nil {
				t.Errorf("the ServiceMonitor selects two Services")
			}
			metricsSvc = s
		}
	}
	if metricsSvc == nil || metricsSvc.Spec.Ports[0].Name != sm.Spec.Endpoints[0].Port || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("the ServiceMonitor does not reach the metrics port")
	}
	if sm.Labels["release"] != "kube-prometheus" {
		t.Errorf("ServiceMonitor labels %v", sm.Labels)
	}
}
