package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is; the Dockerfile states the same (image_test.go).
const (
	User       = "65532:65532" // "nonroot", as in distroless images
	UserName   = "nonroot"
	Binary     = "/usr/local/bin/signalctl"
	HTTPPort   = "8080"
	Metrics    = "9090"
	ImageTitle = "signal"
)

// Env makes serve listen on all interfaces of the container: its defaults
// are loopback only, right for a host, useless in a pod.
var Env = []string{
	"SIGNAL_HTTP_ADDR=:" + HTTPPort,
	"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
}

// Entrypoint runs serve; arguments after the image name are serve's flags.
var Entrypoint = []string{Binary, "serve"}

// Options say what to build and where.
type Options struct {
	Binary   string    // the static linux signalctl to put in
	CABundle string    // PEM CA bundle (Debian's ca-certificates)
	Out      string    // directory: oci/ (layout) and signal.tar (docker load)
	Tag      string    // reference recorded in both, e.g. signal:1.2.3
	Version  string    // org.opencontainers.image.version
	Revision string    // org.opencontainers.image.revision
	Source   string    // org.opencontainers.image.source
	Created  time.Time // every timestamp in the image (the commit's: reproducible)
	Arch     string
}

func main() {
	var o Options
	var created int64
	flag.StringVar(&o.Binary, "binary", "", "static linux signalctl")
	flag.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to include")
	flag.StringVar(&o.Out, "out", "dist/image", "output directory")
	flag.StringVar(&o.Tag, "tag", "signal:dev", "image reference")
	flag.StringVar(&o.Version, "version", "dev", "version label")
	flag.StringVar(&o.Revision, "revision", "", "commit label")
	flag.StringVar(&o.Source, "source", "https://github.com/signal-notify/signal", "source label")
	flag.Int64Var(&created, "created", 0, "unix time of every timestamp (default: SOURCE_DATE_EPOCH, else 0)")
	flag.StringVar(&o.Arch, "arch", "amd64", "GOARCH of the binary")
	flag.Parse()
	if created == 0 {
		created, _ = strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	}
	o.Created = time.Unix(created, 0).UTC()
	if err := Build(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// Build writes the image.
func Build(o Options) error {
	if o.Binary == "" {
		return errors.New("-binary is required")
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return fmt.Errorf("CA bundle (Debian's ca-certificates): %w", err)
	}
	layer, err := rootLayer(o.Created, bin, ca)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: o.Created}
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   Entrypoint,
		Env:          Env,
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{HTTPPort + "/tcp": {}, Metrics + "/tcp": {}},
		Labels:       Labels(o),
		StopSignal:   "SIGTERM",
	}
	cf.History = []v1.History{{Created: v1.Time{Time: o.Created}, CreatedBy: "signal tools/image", Comment: "signalctl, passwd, CA bundle"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}

	ociDir := filepath.Join(o.Out, "oci")
	if err := os.RemoveAll(ociDir); err != nil {
		return err
	}
	p, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.Tag})); err != nil {
		return err
	}
	ref, err := name.ParseReference(o.Tag)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}
	if err := tarball.WriteToFile(filepath.Join(o.Out, "signal.tar"), ref, img); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("image %s (%s): %s/oci (OCI layout), %s/signal.tar (docker load)\n", o.Tag, d, o.Out, o.Out)
	return nil
}

// Labels are the OCI annotations of the image's config.
func Labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    ImageTitle,
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created":  o.Created.Format(time.RFC3339),
	}
}

// rootLayer is the whole file system: no shell, no package manager.
func rootLayer(mtime time.Time, bin, ca []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	uid, _, _ := strings.Cut(User, ":")
	steps := []func() error{
		func() error { return dir("etc/", 0o755) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\n"+UserName+":x:"+uid+":"+uid+":"+UserName+":/home/"+UserName+":/sbin/nologin\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\n"+UserName+":x:"+uid+":\n")) },
		func() error { return dir("etc/ssl/", 0o755) },
		func() error { return dir("etc/ssl/certs/", 0o755) },
		func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca) },
		func() error { return dir("home/", 0o755) },
		func() error {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "home/" + UserName + "/", Mode: 0o700, Uid: 65532, Gid: 65532, ModTime: mtime, Format: tar.FormatPAX})
		},
		func() error { return dir("tmp/", 0o1777) },
		func() error { return dir("usr/", 0o755) },
		func() error { return dir("usr/local/", 0o755) },
		func() error { return dir("usr/local/bin/", 0o755) },
		func() error { return file(Binary[1:], 0o755, bin) },
		tw.Close,
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}
