# Marina's single entry point. `make help` lists the targets.
#
# Everything this Makefile needs beyond Go and make is built from source
# through the Go module proxy and cached under $(CACHE), keyed by version, so
# a second run costs seconds.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO ?= go
CACHE ?= $(HOME)/.cache/marina
BIN ?= bin

# Pinned versions. The Kubernetes and etcd pins live in the go.mod of their
# tools modules (hack/tools/*) so that go.sum verifies them; read them here.
KUBE_VERSION := $(shell awk '$$2=="k8s.io/kubernetes"{print $$3}' hack/tools/kube/go.mod)
ETCD_VERSION := $(shell awk '$$2=="go.etcd.io/etcd/server/v3"{print $$3}' hack/tools/etcd/go.mod)
CERT_MANAGER_VERSION := $(shell awk '$$2=="github.com/cert-manager/cert-manager"{print $$3}' hack/tools/cert-manager/go.mod)
VAULT_VERSION := $(shell awk '$$2=="github.com/hashicorp/vault"{print $$3}' hack/tools/vault/go.mod)
COREDNS_VERSION := $(shell awk '$$2=="github.com/coredns/coredns"{print $$3}' hack/tools/coredns/go.mod)
HELM_VERSION := $(shell awk '$$2=="helm.sh/helm/v3"{print $$3}' hack/tools/helm/go.mod)
KUBE_ROUTER_VERSION := $(shell awk '$$1=="require" && $$2=="github.com/cloudnativelabs/kube-router/v2"{print $$3}' hack/tools/kube-router/go.mod)
LOCAL_PATH_VERSION := $(shell awk '$$1=="require" && $$2=="github.com/rancher/local-path-provisioner"{print $$3}' hack/tools/local-path-provisioner/go.mod)
CONTROLLER_GEN_VERSION := v0.23.0

KUBE_BIN := $(CACHE)/kube/$(KUBE_VERSION)
ETCD_BIN := $(CACHE)/etcd/$(ETCD_VERSION)
# The suffix is a hash of the wrapper's source, which picks the controllers
# built in, so that a cached binary with fewer of them is not taken for it.
CERT_MANAGER_BIN := $(CACHE)/cert-manager/$(CERT_MANAGER_VERSION)-$(shell sha256sum hack/tools/cert-manager/main.go | cut -c1-12)
# The suffix names our transit-only dev server (hack/tools/vault/main.go)
# and a hash of its source, so that neither Vault's full binary nor an
# older dev server in the cache is taken for it.
VAULT_BIN := $(CACHE)/vault/$(VAULT_VERSION)-devserver-$(shell sha256sum hack/tools/vault/main.go | cut -c1-12)
COREDNS_BIN := $(CACHE)/coredns/$(COREDNS_VERSION)
HELM_BIN := $(CACHE)/helm/$(HELM_VERSION)
KUBE_ROUTER_BIN := $(CACHE)/kube-router/$(KUBE_ROUTER_VERSION)
LOCAL_PATH_BIN := $(CACHE)/local-path-provisioner/$(LOCAL_PATH_VERSION)
# One folder of symlinks to every binary the tests and the local environment
# run: envtest reads it as KUBEBUILDER_ASSETS, marina-dev as --bin-dir.
ENVTEST_ASSETS := $(CACHE)/envtest/kube-$(KUBE_VERSION)_etcd-$(ETCD_VERSION)
CONTROLLER_GEN := $(CACHE)/tools/controller-gen-$(CONTROLLER_GEN_VERSION)/controller-gen

# Without these the binaries report v0.0.0, and kube-apiserver derives its
# emulation version from the binary version.
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean

# What a release build of helm stamps in: its version, and the Kubernetes
# version `helm template` and `helm lint` assume offline (otherwise 1.20,
# which charts/marina's kubeVersion rejects).
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach p,pkg/chartutil pkg/lint/rules,-X helm.sh/helm/v3/$(p).k8sVersionMajor=1 -X helm.sh/helm/v3/$(p).k8sVersionMinor=$(KUBE_MINOR))

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/marina-platform/marina/internal/version.Version=$(VERSION)

OPERATORS := controlplane register sync
CRD_DIR := charts/marina/crds
# Files `make generate` writes; `make verify-generated` checks they are fresh.
# charts/marina/files/rbac/<operator>/role.yaml holds the operator's RBAC,
# generated from the markers under operators/<operator>; the chart reads it.
GENERATED := api/v1alpha1/zz_generated.deepcopy.go $(wildcard $(CRD_DIR)/*.yaml) $(wildcard charts/marina/files/rbac/*/role.yaml)

##@ Main

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2} /^##@/ {printf "\n%s\n", substr($$0, 5)}' $(MAKEFILE_LIST)

MARINA_DEV = $(GO) run ./cmd/marina-dev

.PHONY: up
up: deps test-binaries ## Start the local multi-data-center environment (idempotent).
	$(MARINA_DEV) up --bin-dir $(ENVTEST_ASSETS) $(UP_FLAGS)

.PHONY: down
down: ## Stop and remove everything `make up` made.
	$(MARINA_DEV) down

.PHONY: bench
bench: deps test-binaries ## Benchmark the local environment (up, second up, memory, control planes, encryption, down) into bench/localenv.md, the KMS plugin into bench/kms-plugin.txt, one member's join into bench/register-join.txt, the register operator with hundreds of members (arrivals, memory, steady-state writes) into bench/register-scale.txt and PolicySets over 20 control planes × 500 policies (propagation, drift correction, steady-state writes, memory) into bench/sync-propagation.txt.
	@mkdir -p bench
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench BenchmarkPlugin -benchtime 3000x -count 3 ./cmd/kms-vault | tee bench/kms-plugin.txt
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench BenchmarkJoin -benchtime 100x -count 3 ./operators/register/join | tee bench/register-join.txt
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench BenchmarkScale -benchtime 1x -timeout 90m ./operators/register | tee bench/register-scale.txt
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench BenchmarkPropagation -benchtime 1x -timeout 30m ./operators/sync/controller | tee bench/sync-propagation.txt
	$(MARINA_DEV) bench --bin-dir $(ENVTEST_ASSETS) --report bench/localenv.md $(UP_FLAGS)

.PHONY: status
status: ## Show the health of every part of the local environment and its kubeconfigs.
	$(MARINA_DEV) status

.PHONY: test
test: deps verify-generated lint test-binaries ## Run the whole suite: generated-code check, lint, unit and integration tests.
	@# The end-to-end suite runs after the others rather than beside them:
	@# on two cores, a local environment coming up next to a dozen API
	@# servers and etcds is slow enough to make kubelets and etcds give up.
	@rc=0; \
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -count=1 -timeout 40m $$($(GO) list ./... | grep -v '/e2e$$') || rc=1; \
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -count=1 -timeout 50m ./e2e || rc=1; \
	exit $$rc
	@[ -n "$${MARINA_ENGINE_IMAGES:-}" ] || echo "note: e2e TestRealEngine was skipped: MARINA_ENGINE_IMAGES names no folder of the engine's images (see README, Engine versions)"

##@ Development

.PHONY: deps
deps: ## Install missing Debian packages (containerd, runc, CNI plugins, iptables …) and check Go.
	@hack/ensure-deps.sh

.PHONY: build
build: ## Build the operator binaries into bin/.
	@mkdir -p $(BIN)
	@for op in $(OPERATORS); do \
		echo "go build $(BIN)/marina-$$op"; \
		$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/marina-$$op ./operators/$$op; \
	done

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy functions and CRDs from api/, and the operators' RBAC from their markers.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=$(CRD_DIR)
	@for op in $(OPERATORS); do \
		echo "$(CONTROLLER_GEN) rbac:roleName=marina-$$op paths=./operators/$$op/... output:rbac:artifacts:config=charts/marina/files/rbac/$$op"; \
		$(CONTROLLER_GEN) rbac:roleName=marina-$$op paths=./operators/$$op/... output:rbac:artifacts:config=charts/marina/files/rbac/$$op; \
	done

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) ## Fail when generated files differ from what `make generate` writes.
	@snap=$$(mktemp -d); trap 'rm -rf $$snap' EXIT; \
	for f in $(GENERATED); do mkdir -p $$snap/$$(dirname $$f); cp $$f $$snap/$$f; done; \
	$(MAKE) generate >/dev/null; \
	stale=0; \
	for f in api/v1alpha1/zz_generated.deepcopy.go $(CRD_DIR)/*.yaml charts/marina/files/rbac/*/role.yaml; do \
		if ! cmp -s $$f $$snap/$$f; then echo "stale generated file: $$f"; stale=1; fi; \
	done; \
	if [ $$stale = 1 ]; then echo "generated files were stale: they are regenerated now; review and commit them" >&2; exit 1; fi; \
	echo "generated files are up to date"

.PHONY: lint
lint: ## gofmt and go vet.
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...

.PHONY: test-binaries
KUBE_BINARIES := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
TEST_BINARIES := $(KUBE_BINARIES) etcd cert-manager-controller vault coredns helm kube-router local-path-provisioner
test-binaries: $(addprefix $(ENVTEST_ASSETS)/,$(TEST_BINARIES)) ## Build the Kubernetes binaries, etcd, cert-manager, Vault, CoreDNS, helm, the NetworkPolicy enforcer and the storage provisioner the tests run, from source.

.PHONY: clean
clean: ## Remove bin/ (the cache under $(CACHE) stays).
	rm -rf $(BIN)

##@ Cached tools (built from source, keyed by version)

# The binaries in the cache are prerequisites of the symlinks in the test
# folder; without this make would delete them as intermediate files after
# every run, and the next run would build them again.
.SECONDARY:

# The symlinks are looked at on every run (FORCE) and repointed when a tool's
# version, hence its cache path, changed: being secondary, a binary missing
# from the cache would otherwise not be built while an old link exists.
$(addprefix $(ENVTEST_ASSETS)/,$(KUBE_BINARIES)): $(ENVTEST_ASSETS)/%: $(KUBE_BIN)/% FORCE
	@mkdir -p $(@D)
	@[ "$$(readlink $@)" = "$<" ] || { echo "ln -sf $< $@"; ln -sf $< $@; }

$(ENVTEST_ASSETS)/etcd: $(ETCD_BIN)/etcd
$(ENVTEST_ASSETS)/cert-manager-controller: $(CERT_MANAGER_BIN)/cert-manager-controller
$(ENVTEST_ASSETS)/vault: $(VAULT_BIN)/vault
$(ENVTEST_ASSETS)/coredns: $(COREDNS_BIN)/coredns
$(ENVTEST_ASSETS)/helm: $(HELM_BIN)/helm
$(ENVTEST_ASSETS)/kube-router: $(KUBE_ROUTER_BIN)/kube-router
$(ENVTEST_ASSETS)/local-path-provisioner: $(LOCAL_PATH_BIN)/local-path-provisioner
$(addprefix $(ENVTEST_ASSETS)/,etcd cert-manager-controller vault coredns helm kube-router local-path-provisioner): FORCE
	@mkdir -p $(@D)
	@[ "$$(readlink $@)" = "$(filter-out FORCE,$^)" ] || { echo "ln -sf $(filter-out FORCE,$^) $@"; ln -sf $(filter-out FORCE,$^) $@; }

.PHONY: FORCE
FORCE:

# The cache paths carry the version, so no file prerequisites: a fresh clone's
# newer mtimes must not force a rebuild. Everything is static (CGO_ENABLED=0)
# because the local environment also packs these binaries into images with
# nothing else in them.
$(KUBE_BIN)/%:
	@mkdir -p $(@D)
	@echo "building $* $(KUBE_VERSION) from source (cold: several minutes)"
	cd hack/tools/kube && CGO_ENABLED=0 $(GO) build -ldflags "$(KUBE_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/$*
	mv $@.tmp $@

$(ETCD_BIN)/etcd:
	@mkdir -p $(@D)
	@echo "building etcd $(ETCD_VERSION) from source"
	cd hack/tools/etcd && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@.tmp .
	mv $@.tmp $@

$(CERT_MANAGER_BIN)/cert-manager-controller:
	@mkdir -p $(@D)
	@echo "building cert-manager $(CERT_MANAGER_VERSION) controllers from source (cold: about 3 minutes)"
	cd hack/tools/cert-manager && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@.tmp .
	mv $@.tmp $@

# Vault's core with only the plugins Marina uses (see hack/tools/vault/main.go):
# the full binary took three times as long to compile. Vault's own replace
# lines live in the wrapper's go.mod; -mod=mod lets the build settle the few
# go.sum lines the pinned go.sum does not list.
$(VAULT_BIN)/vault:
	@mkdir -p $(@D)
	@echo "building a Vault $(VAULT_VERSION) dev server from source (cold: about 6 minutes; a test dependency only, never shipped)"
	cd hack/tools/vault && CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) build -ldflags "-s -w" -o $@.tmp .
	mv $@.tmp $@

$(COREDNS_BIN)/coredns:
	@mkdir -p $(@D)
	@echo "building CoreDNS $(COREDNS_VERSION) from source"
	cd hack/tools/coredns && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@.tmp .
	mv $@.tmp $@

$(KUBE_ROUTER_BIN)/kube-router:
	@mkdir -p $(@D)
	@echo "building kube-router $(KUBE_ROUTER_VERSION) (the nodes' NetworkPolicy enforcer) from source"
	cd hack/tools/kube-router && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@.tmp github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
	mv $@.tmp $@

$(LOCAL_PATH_BIN)/local-path-provisioner:
	@mkdir -p $(@D)
	@echo "building local-path-provisioner $(LOCAL_PATH_VERSION) (the local environment's storage provisioner) from source"
	cd hack/tools/local-path-provisioner && CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $@.tmp github.com/rancher/local-path-provisioner
	mv $@.tmp $@

$(HELM_BIN)/helm:
	@mkdir -p $(@D)
	@echo "building helm $(HELM_VERSION) from source"
	cd hack/tools/helm && CGO_ENABLED=0 $(GO) build -ldflags "$(HELM_LDFLAGS)" -o $@.tmp helm.sh/helm/v3/cmd/helm
	mv $@.tmp $@

$(CONTROLLER_GEN):
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS= $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
