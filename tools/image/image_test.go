package main

import (
	"archive/tar"
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image `make image` wrote: SIGNAL_IMAGE_DIR (make image-check sets
// it, with the labels it expects in SIGNAL_IMAGE_VERSION and
// SIGNAL_IMAGE_REVISION).
func imageDir(t *testing.T) string {
	dir := os.Getenv("SIGNAL_IMAGE_DIR")
	if dir == "" {
		t.Fatal("SIGNAL_IMAGE_DIR is not set: run `make image-check` (builds the image, then this test)")
	}
	return dir
}

// Largest image accepted, compressed and not: signalctl is ~30 MB, the
// rest is a few files. Past these something unintended came in.
const (
	maxCompressed   = 25 << 20
	maxUncompressed = 50 << 20
)

func TestTheImageIsWhatItClaims(t *testing.T) {
	dir := imageDir(t)
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatalf("read the OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] == "" {
		t.Fatalf("index: want one image with a ref.name, got %+v", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, img)

	// The docker-load tarball is the same image.
	tb, err := tarball.ImageFromPath(filepath.Join(dir, "signal.tar"), nil)
	if err != nil {
		t.Fatalf("read signal.tar: %v", err)
	}
	d1, _ := img.ConfigName()
	d2, err := tb.ConfigName()
	if err != nil || d1 != d2 {
		t.Errorf("signal.tar config %s, OCI layout config %s (%v)", d2, d1, err)
	}
}

func checkImage(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" {
		t.Errorf("os %q", cf.OS)
	}
	uid, _, _ := strings.Cut(c.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		// A name would need the passwd of the image to be judged: numeric only.
		t.Errorf("user %q: must not be root", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{Binary, "serve"}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q, cmd %q: want [%s serve] and no cmd", c.Entrypoint, c.Cmd, Binary)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v: want 8080/tcp", c.ExposedPorts)
	}
	// Listening on all interfaces: serve's own default is loopback only.
	if addr := envValue(c.Env, "SIGNAL_HTTP_ADDR"); addr != ":8080" && addr != "0.0.0.0:8080" {
		t.Errorf("SIGNAL_HTTP_ADDR=%q: want all interfaces, port 8080", addr)
	}
	for _, l := range []string{"source", "version", "revision"} {
		if c.Labels["org.opencontainers.image."+l] == "" {
			t.Errorf("label org.opencontainers.image.%s missing (labels %v)", l, c.Labels)
		}
	}
	if want := os.Getenv("SIGNAL_IMAGE_REVISION"); want != "" && c.Labels["org.opencontainers.image.revision"] != want {
		t.Errorf("revision label %q, want %q", c.Labels["org.opencontainers.image.revision"], want)
	}
	if want := os.Getenv("SIGNAL_IMAGE_VERSION"); want != "" && c.Labels["org.opencontainers.image.version"] != want {
		t.Errorf("version label %q, want %q", c.Labels["org.opencontainers.image.version"], want)
	}

	// Size, and the files: no shell anywhere, the binary static.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var compressed, uncompressed int64
	files := map[string]*tar.Header{}
	bin := filepath.Join(t.TempDir(), "signalctl")
	for _, l := range layers {
		n, _ := l.Size()
		compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			uncompressed += h.Size
			files["/"+strings.TrimPrefix(h.Name, "/")] = h
			if "/"+h.Name == Binary {
				f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(f, tr); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
		}
		rc.Close()
	}
	t.Logf("image: %d layer(s), %.1f MiB compressed, %.1f MiB of files", len(layers), float64(compressed)/(1<<20), float64(uncompressed)/(1<<20))
	if compressed > maxCompressed || uncompressed > maxUncompressed {
		t.Errorf("image is %d bytes compressed, %d uncompressed: over %d / %d", compressed, uncompressed, maxCompressed, maxUncompressed)
	}
	for name := range files {
		base := filepath.Base(name)
		if base == "sh" || base == "bash" || base == "busybox" || base == "ash" || base == "dash" {
			t.Errorf("the image has a shell: %s", name)
		}
	}
	h := files[Binary]
	if h == nil {
		t.Fatalf("no %s in the image (files %v)", Binary, keys(files))
	}
	if h.Mode&0o111 == 0 || h.Mode&0o022 != 0 {
		t.Errorf("%s mode %o: want executable, writable by its owner only", Binary, h.Mode)
	}
	if p := files["/etc/passwd"]; p == nil {
		t.Error("no /etc/passwd naming the user")
	}
	if files["/etc/ssl/certs/ca-certificates.crt"] == nil {
		t.Error("no CA bundle: TLS to brokers and JWKS would fail")
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", Binary, err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (program header %v): the image has no libc", Binary, p.Type)
		}
	}
	// It runs, and is the version its label says.
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("signalctl version: %v", err)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(out, &v); err != nil || v.Version != c.Labels["org.opencontainers.image.version"] {
		t.Errorf("signalctl version says %q (%v), label says %q", v.Version, err, c.Labels["org.opencontainers.image.version"])
	}
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The Dockerfile builds the same image for those with a Docker engine:
// its final stage states the same user, entrypoint, ports, environment and
// label keys as this builder.
func TestTheDockerfileStatesTheSame(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var final []string // instructions of the last stage, continuation lines joined
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cur += line
		if strings.HasPrefix(strings.ToUpper(cur), "FROM ") {
			final = nil
		}
		final = append(final, cur)
		cur = ""
	}
	got := map[string][]string{}
	for _, ins := range final {
		kw, rest, _ := strings.Cut(ins, " ")
		got[strings.ToUpper(kw)] = append(got[strings.ToUpper(kw)], strings.TrimSpace(rest))
	}
	if from := strings.Join(got["FROM"], ""); from != "scratch" {
		t.Errorf("final stage FROM %q: want scratch (no shell)", from)
	}
	if u := strings.Join(got["USER"], ""); u != User {
		t.Errorf("USER %q, want %q", u, User)
	}
	var ep []string
	if err := json.Unmarshal([]byte(strings.Join(got["ENTRYPOINT"], "")), &ep); err != nil || !slices.Equal(ep, Entrypoint) {
		t.Errorf("ENTRYPOINT %q (%v), want %q in JSON form", got["ENTRYPOINT"], err, Entrypoint)
	}
	ports := strings.Fields(strings.Join(got["EXPOSE"], " "))
	slices.Sort(ports)
	if !slices.Equal(ports, []string{HTTPPort + "/tcp", Metrics + "/tcp"}) {
		t.Errorf("EXPOSE %v, want %s/tcp %s/tcp", ports, HTTPPort, Metrics)
	}
	env := strings.Join(got["ENV"], " ")
	for _, e := range Env {
		if !strings.Contains(env, e) {
			t.Errorf("ENV lacks %s (has %q)", e, env)
		}
	}
	labels := strings.Join(got["LABEL"], " ")
	for k := range Labels(Options{}) {
		if k == "org.opencontainers.image.created" { // docker records its own build time
			continue
		}
		if !strings.Contains(labels, k+"=") {
			t.Errorf("LABEL lacks %s", k)
		}
	}
}
