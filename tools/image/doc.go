// Command image builds Signal's OCI image without a container engine: one
// layer (the static signalctl, a passwd and group naming the non-root user,
// the CA bundle for TLS to brokers and JWKS), no shell, `signalctl serve`
// as the entrypoint, listening on all interfaces, OCI labels. It writes an
// OCI image layout (skopeo, crane, podman and containerd read it) and a
// tarball that `docker load` takes.
//
// It is a module of its own, so go-containerregistry stays out of the
// product's go.mod. `make image` runs it; image_test.go inspects what it
// wrote, and checks the Dockerfile states the same.
package main
