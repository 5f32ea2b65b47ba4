# tools.mk: the pinned development tools and the checks that use them.
# Included by the Makefile (before release.mk, which uses TOOLS_DIR).
#
#   make tidy-check   go.mod and go.sum of every module are what go mod tidy makes
#   make errcheck     no unchecked error outside the tests (scripts/errcheck-exclude)
#   make vulncheck    no known vulnerability called by the code (scripts/vulncheck-accept)
#   make funcsize     no function of internal/ over 80 lines or cyclomatic 20 (scripts/funcsize-allow)
#
# Tools live outside the clone, in the user's cache, keyed by version: a fresh
# clone (CI, a new worktree) finds the binary built by an earlier run instead
# of building it again. Changing a pin installs the new one beside the old.
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/signal/tools

STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
ERRCHECK_VERSION    := v1.30.0
ERRCHECK    := $(TOOLS_DIR)/errcheck-$(ERRCHECK_VERSION)/errcheck
GOVULNCHECK_VERSION := v1.9.0
GOVULNCHECK := $(TOOLS_DIR)/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
GOCYCLO_VERSION     := v0.6.0
GOCYCLO     := $(TOOLS_DIR)/gocyclo-$(GOCYCLO_VERSION)/gocyclo
# The vulnerability database: golang.org/x/vulndb's OSV files, a Go module
# like any other (no other network needed; offline once in the module
# cache). Its date is the database's: bump it to learn of newer reports.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018

# $(call go-install,MODULE/CMD@VERSION), in the recipe of the tool's path:
# `go install` into a folder beside it, moved in place only once built (an
# interrupted build leaves nothing that looks installed).
define go-install
@echo "Installing $(@F) $(lastword $(subst @, ,$(1))) into $(@D) (first run only)" >&2
@rm -rf $(@D).tmp
GOBIN=$(@D).tmp $(GO) install $(1)
@mkdir -p $(@D) && mv $(@D).tmp/$(@F) $@ && rm -rf $(@D).tmp
endef

$(STATICCHECK):
	$(call go-install,honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))
$(ERRCHECK):
	$(call go-install,github.com/kisielk/errcheck@$(ERRCHECK_VERSION))
$(GOVULNCHECK):
	$(call go-install,golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION))
$(GOCYCLO):
	$(call go-install,github.com/fzipp/gocyclo/cmd/gocyclo@$(GOCYCLO_VERSION))

.PHONY: tidy-check errcheck vulncheck funcsize

## tidy-check: go.mod and go.sum of the product, bench/ and scripts/releasecheck/ are tidy
tidy-check:
	$(GO) mod tidy -diff
	$(GO) -C bench mod tidy -diff
	$(GO) -C scripts/releasecheck mod tidy -diff

## errcheck: every error of the product's code is looked at (tests aside)
errcheck: $(ERRCHECK)
	$(ERRCHECK) -ignoretests -exclude scripts/errcheck-exclude ./...

## vulncheck: no vulnerability of the database is called by the product
vulncheck: $(GOVULNCHECK)
	@db=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') && \
	  test -d "$$db/data/osv" || { echo "vulncheck: no golang.org/x/vulndb@$(VULNDB_VERSION) in the module cache" >&2; exit 1; } && \
	  echo "$(GO) run ./internal/tools/vulncheck -db $$db/data/osv" && \
	  $(GO) run ./internal/tools/vulncheck -govulncheck $(GOVULNCHECK) -db "$$db/data/osv" -accept scripts/vulncheck-accept ./...

## funcsize: no function of internal/ (tests aside) over 80 lines or over cyclomatic complexity 20, but the at most 5 of scripts/funcsize-allow
funcsize: $(GOCYCLO)
	$(GO) run ./internal/tools/funcsize -lines 80 -gocyclo $(GOCYCLO) -over 20 -allow scripts/funcsize-allow -max-allow 5 internal
