# The two commands: `make dev` sets up and runs everything; `make test` sets up and passes every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON ?= python3
SWIFT_BUILD_FLAGS ?=

# `make token USER=bob SCOPE="read:todos"`. USER is also the login name in the environment, so only a USER given on
# the command line picks the demo user.
ifeq ($(origin USER),command line)
TOKEN_USER := $(USER)
else
TOKEN_USER := alice
endif
SCOPE ?= openid profile email read:todos read:billing write:todos

.PHONY: help dev test token build system-deps dev-vars venv format lint bench order-file clean

help:
	@echo "make dev     set up and run DevIdP and TodosAPI (Ctrl-C stops them)"
	@echo "make test    set up and run every test (Swift, then the Python interop suite)"
	@echo "make token   print an access token from DevIdP: make token USER=bob SCOPE=\"read:todos\""
	@echo "make bench   measure throughput on a release build (see docs/benchmarks.md)"
	@echo "make order-file  record the order the gateway's functions run in, for the release build's linker"
	@echo "make format  format the Swift code with the checked-in .swift-format"

system-deps:
	@scripts/install-system-deps.sh

dev-vars:
	@scripts/create-dev-vars.sh

build: system-deps
	swift build $(SWIFT_BUILD_FLAGS)

dev: system-deps dev-vars build
	@scripts/dev.sh

token:
	@mkdir -p .build && swift build --product DevIdP $(SWIFT_BUILD_FLAGS) > .build/token-build.log 2>&1 || { cat .build/token-build.log >&2; exit 1; }
	@"$$(swift build --show-bin-path)/DevIdP" token --user "$(TOKEN_USER)" --scope "$(SCOPE)"

$(VENV)/.installed: Tests/Interop/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r Tests/Interop/requirements.txt
	@touch $@

venv: $(VENV)/.installed

# The store tests run on SQLite and on a throw-away PostgreSQL server (installed from Debian's packages if missing),
# which the interop tests of several gateway instances behind nginx use too. The browser tests drive Debian's
# Chromium through its chromedriver (test_browser_pages.py).
test: system-deps venv
	@scripts/install-system-deps.sh nginx-light chromium chromium-driver
	$(PYTHON) scripts/folders.py check
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	GATEWAY_TEST_REQUIRE_POSTGRES=1 BIN_PATH="$$(swift build --show-bin-path)" scripts/with-postgres.sh \
		bash -c 'swift test --skip-build $(SWIFT_BUILD_FLAGS) && $(VENV)/bin/python -m pytest -q Tests/Scripts Tests/Interop'

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

# The last commit whose Todos tools were written in Swift: the generated ones are measured against it (issue 19).
TOOLS_BASELINE ?= 7aae9f3

# Every script records what it measured and its targets (bench/results.py) and goes on; bench/targets.py, last, fails
# the run if one was missed. The peers of bench/run.py come from Debian: Go with golang-jwt, Node with jose.
# The release build is scripts/release-build.sh's, the container image's (static, code in the order of
# deploy/McpGateway.ld), in .build-release.
RELEASE_BIN = $$(scripts/release-build.sh --show-bin-path)

bench: venv $(VENV)/.bench-installed
	@scripts/install-system-deps.sh wrk golang-go golang-github-golang-jwt-jwt-dev nodejs node-jose
	scripts/release-build.sh
	RELEASE_BIN="$(RELEASE_BIN)" $(VENV)/bin/python bench/run.py
	RELEASE_BIN="$(RELEASE_BIN)" $(VENV)/bin/python bench/gateway_bench.py
	RELEASE_BIN="$(RELEASE_BIN)" BASELINE_BIN="$$(scripts/build-baseline.sh $(TOOLS_BASELINE))" \
		$(VENV)/bin/python bench/tools_side_by_side.py
	RELEASE_BIN="$(RELEASE_BIN)" $(VENV)/bin/python bench/mcp_abuse.py
	@scripts/install-system-deps.sh nginx-light
	RELEASE_BIN="$(RELEASE_BIN)" scripts/with-postgres.sh $(VENV)/bin/python bench/cluster_bench.py
	$(VENV)/bin/python bench/targets.py

# Records deploy/McpGateway.ld again (scripts/function-order/record.py), after changes that add or move much of the
# code the gateway runs; then links the gateway in the new order. x86-64 Linux.
order-file: venv
	RELEASE_LINK_MAP=1 scripts/release-build.sh
	RELEASE_BIN="$(RELEASE_BIN)" $(VENV)/bin/python scripts/function-order/record.py "$(RELEASE_BIN)/McpGateway" \
		"$${RELEASE_SCRATCH:-.build-release}/McpGateway.map"
	scripts/release-build.sh

format:
	swift format -i -r Package.swift Shared Services Tests

lint:
	swift format lint -r --strict Package.swift Shared Services Tests

clean:
	rm -rf .build .build-* $(VENV)
