# deploy.mk: the OCI image and the Helm chart. Included by the Makefile;
# uses its GO, VERSION, LDFLAGS, TOOLS_DIR.
#
#   make image         OCI image into $(IMAGE_DIR): oci/ (OCI layout) and signal.tar (docker load)
#   make image-check   make image, then inspect it (tools/image/image_test.go)
#   make chart-check   helm lint and template, every manifest decoded into the Kubernetes types
#   make deploy-check  both (part of `make test`)

_deploy_mk_default_goal := $(.DEFAULT_GOAL)

IMAGE_DIR      ?= dist/image
IMAGE_TAG      ?= signal:$(VERSION)
IMAGE_ARCH     ?= amd64
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo none)
# Every timestamp in the image is the commit's: the same commit gives the same image.
IMAGE_CREATED  ?= $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),0)

IMAGE_LDFLAGS  := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT) \
  -X $(PKG).date=$(shell date -u -d @$(IMAGE_CREATED) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)

HELM_VERSION := v4.3.2
HELM         := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm
CHART        := deploy/helm/signal

.PHONY: image image-check chart-check deploy-check

## image: the OCI image, built without a container engine (tools/image)
image:
	@mkdir -p $(IMAGE_DIR)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags "$(IMAGE_LDFLAGS)" -o $(IMAGE_DIR)/signalctl ./cmd/signalctl
	cd tools/image && $(GO) run . -binary $(CURDIR)/$(IMAGE_DIR)/signalctl -out $(CURDIR)/$(IMAGE_DIR) \
	  -tag "$(IMAGE_TAG)" -version "$(VERSION)" -revision "$(IMAGE_REVISION)" -created "$(IMAGE_CREATED)" -arch $(IMAGE_ARCH)
	@rm -f $(IMAGE_DIR)/signalctl

## image-check: build the image and inspect it
image-check: image
	cd tools/image && SIGNAL_IMAGE_DIR=$(CURDIR)/$(IMAGE_DIR) SIGNAL_IMAGE_VERSION="$(VERSION)" \
	  SIGNAL_IMAGE_REVISION="$(IMAGE_REVISION)" $(GO) test -count=1 ./...

# helm, built from the Go module proxy on first use, like goreleaser.
$(HELM):
	@echo "Installing helm $(HELM_VERSION) into $(@D) (first run only)" >&2
	@rm -rf $(@D).tmp
	GOBIN=$(@D).tmp $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	@mkdir -p $(@D) && mv $(@D).tmp/helm $@ && rm -rf $(@D).tmp

## chart-check: lint and render the chart, decode every manifest strictly (deploy/helm/test)
chart-check: $(HELM)
	cd deploy/helm/test && SIGNAL_HELM=$(HELM) $(GO) test -count=1 ./...

deploy-check: image-check chart-check

.DEFAULT_GOAL := $(_deploy_mk_default_goal)
