# release.mk: completions, man pages and goreleaser. Included by the Makefile;
# uses its GO, BIN and VERSION and its `build` target.
#
#   make completions         regenerate completions/ (committed) from the binary
#   make completions-check   fail when completions/ differs from what the binary prints
#   make man                 man pages into $(MAN_DIR) (generated, not committed)
#   make goreleaser-check    validate .goreleaser.yaml with the pinned goreleaser (built from source on first use)
#   make snapshot            goreleaser release --snapshot --clean: everything into dist/, offline
#   make releasecheck        validate .goreleaser.yaml with goreleaser's configuration package only (seconds)
#   make release-check       completions-check + releasecheck (+ goreleaser check when already built): part of `make test`

# Included before the Makefile's first target: keep `build` the default goal.
_release_mk_default_goal := $(.DEFAULT_GOAL)

GORELEASER_VERSION := v2.15.1
# In the tools cache of tools.mk (TOOLS_DIR), like the other tools.
GORELEASER := $(TOOLS_DIR)/goreleaser-$(GORELEASER_VERSION)/goreleaser

COMPLETIONS_DIR := completions
MAN_DIR         ?= .dev/man
# Man pages carry the commit's date (reproducible), else today's.
MAN_DATE        ?= $(shell git log -1 --format=%ct 2>/dev/null)

# $(call gen-completions,DIR): the scripts exactly as `signalctl completion SHELL` prints them.
define gen-completions
$(BIN) completion bash > $(1)/signalctl.bash && \
$(BIN) completion zsh > $(1)/signalctl.zsh && \
$(BIN) completion fish > $(1)/signalctl.fish && \
$(BIN) completion powershell > $(1)/signalctl.ps1
endef

.PHONY: completions completions-check man goreleaser-check snapshot releasecheck release-check

## completions: regenerate completions/ (commit the result)
completions: build
	@mkdir -p $(COMPLETIONS_DIR)
	$(call gen-completions,$(COMPLETIONS_DIR))

## completions-check: completions/ must be what the binary prints
completions-check: build
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(call gen-completions,$$tmp) && \
	  if ! diff -r -q $(COMPLETIONS_DIR) "$$tmp" >&2; then \
	    echo "completions/ is stale: run make completions" >&2; exit 1; \
	  fi

## man: man pages (gzipped) into MAN_DIR
man:
	$(GO) run ./internal/tools/gendocs -man $(MAN_DIR) -gzip -version $(VERSION) $(if $(MAN_DATE),-date $(MAN_DATE))

# goreleaser, built from the Go module proxy on first use. A cold Go module and
# build cache makes this the slow step (minutes, ~2 GB of modules); later runs
# find the binary here and skip it.
$(GORELEASER):
	$(call go-install,github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION))

## goreleaser-check: validate .goreleaser.yaml
goreleaser-check: $(GORELEASER)
	$(GORELEASER) check

## snapshot: build every archive and package into dist/ without publishing
# goreleaser reads the commit, its date and the origin URL from git; in a
# clone without a remote it would drop all three (version ...-SNAPSHOT-none,
# dates of year 1), so such a clone gets a stand-in origin for this command
# only, through git's environment: nothing in .git is changed.
snapshot: $(GORELEASER)
	@if [ -z "$$(git remote 2>/dev/null)" ] && git rev-parse --git-dir >/dev/null 2>&1; then \
	  echo "No git remote: using a stand-in origin for goreleaser" >&2; \
	  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
	    GIT_CONFIG_VALUE_0=https://github.com/signal-notify/signal.git; \
	fi; \
	echo "$(GORELEASER) release --snapshot --clean"; \
	$(GORELEASER) release --snapshot --clean

## releasecheck: .goreleaser.yaml decoded strictly by goreleaser's own configuration package
# scripts/releasecheck is a module of its own (goreleaser stays out of the
# product's go.mod) pinned to the same goreleaser as GORELEASER_VERSION; it
# compiles goreleaser's configuration package only, so a fresh machine does
# not build goreleaser (~10 minutes) for `make test`.
releasecheck:
	@grep -q 'github.com/goreleaser/goreleaser/v2 $(GORELEASER_VERSION)$$' scripts/releasecheck/go.mod || \
	  { echo "scripts/releasecheck/go.mod does not require goreleaser $(GORELEASER_VERSION) (GORELEASER_VERSION)" >&2; exit 1; }
	$(GO) -C scripts/releasecheck run . ../../.goreleaser.yaml

## release-check: what `make test` runs for the release files; goreleaser's
## own check too when a goreleaser is already built (make goreleaser-check)
release-check: completions-check releasecheck
	$(if $(wildcard $(GORELEASER)),$(GORELEASER) check)

.DEFAULT_GOAL := $(_release_mk_default_goal)
