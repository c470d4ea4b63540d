# Fleet: every target installs what it needs first, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3
# Some environments set PYTHONDONTWRITEBYTECODE=1. Without bytecode caches every process the
# suite starts (each pytest worker, server and `fleet`) compiles its modules again, and pytest
# rewrites the asserts of every test module and plugin again: twice the collection time.
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
# Two installs: serving needs only the runtime lock (make run); tests, benchmarks and the
# quality gates add the dev lock on top.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
HOST ?= 127.0.0.1
PORT ?= 8000
# make run-postgres: the server's PostgreSQL store and web worker count.
POSTGRES_HOST ?= 127.0.0.1
POSTGRES_PORT ?= 5432
POSTGRES_DBNAME ?= test
POSTGRES_USER ?= postgres
POSTGRES_PASSWORD ?=
POSTGRES_SCHEMA ?= fleet
WORKERS ?= 4

# `make lock LOCK_ARGS=--upgrade` bumps every pin; `LOCK_ARGS="--upgrade-package ruff"` just one.
LOCK_ARGS ?=

# make audit: which advisory database pip-audit asks (pypi, osv or esms).
AUDIT_SERVICE ?= pypi
# 1: a package that could not be audited fails the gate (a gate that audited nothing must not pass).
AUDIT_STRICT ?= 1
# Advisories ignored on purpose: one `AUDIT_IGNORE += ID  # package: why; review by DATE` a line.
# See docs/quality-gates.md before adding one.
AUDIT_IGNORE :=
AUDIT_REPORT := $(VENV)/pip-audit.json

.PHONY: install install-runtime lock test test-fast soak run run-postgres bench bench-quick wrk \
  chromium clean lint typecheck layers \
  build audit check

# requirements.lock pins what serving needs ([project] dependencies and the build backend for
# the editable install); requirements-dev.lock pins that plus the dev extra (tests, benchmarks,
# quality tools), resolved under requirements.lock so both agree on every shared pin. The
# project itself is installed editable without touching them. A lock holds every dependency of
# what it pins, so pip need not resolve them again (--no-deps, a few seconds less on a fresh
# clone); `pip check` then fails when something asks for a package the lock lacks: run
# `make lock`.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -r $(DEV_LOCK)
	$(BIN)/python -m pip check
	touch $(DEV_STAMP)

# Everything: the runtime and the dev tools.
install: $(DEV_STAMP)

# Only what `make run` needs.
install-runtime: $(STAMP)

# Regenerate both locks from pyproject.toml: the runtime one first, then the dev one constrained
# by it. `LOCK_ARGS` applies to both, except that `--upgrade-package NAME` reaches the runtime
# lock only when NAME is already in it (pip-compile would add it there otherwise).
COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --allow-unsafe \
  --strip-extras --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
  --build-deps-for editable
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip-tools $(if $(wildcard $(DEV_LOCK)),-c $(DEV_LOCK))
	runtime_args=""; set -- $(LOCK_ARGS); \
	while [ $$# -gt 0 ]; do \
	  case "$$1" in \
	    --upgrade-package|-P) \
	      if grep -qi "^$$2==" $(LOCK) 2>/dev/null; then runtime_args="$$runtime_args $$1 $$2"; fi; \
	      shift 2;; \
	    *) runtime_args="$$runtime_args $$1"; shift;; \
	  esac; \
	done; \
	$(COMPILE) --output-file $(LOCK) $$runtime_args pyproject.toml
	$(COMPILE) --extra dev --constraint $(LOCK) --output-file $(DEV_LOCK) $(LOCK_ARGS) pyproject.toml

# The suite on every core and one more (pytest-xdist): the server tests and the PostgreSQL
# round trips leave a worker waiting often enough that a third worker on two cores made
# `make test` 10 % faster, a fourth slower. TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
XDIST = -n $(TEST_WORKERS) --dist loadgroup

# The whole suite on both backends, with coverage: what CI runs.
test: $(DEV_STAMP) chromium
	$(BIN)/python -m pytest $(XDIST) --cov --cov-report=term $(PYTEST_ARGS)

# The inner loop: unit tests and the HTTP API tests on SQLite, no coverage, no slow fuzzing.
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest $(XDIST) tests/unit tests/api -m "not postgres and not slow" $(PYTEST_ARGS)

# The reliability suite (tests/reliability), longer and harder than its bounded form in
# `make test`: SOAK_SECONDS of load per phase, SOAK_CLIENTS client threads, SOAK_CRASHES
# kill-and-restart cycles. Prints its figures and writes them to var/reliability/*.json.
SOAK_SECONDS ?= 30
SOAK_CLIENTS ?= 16
SOAK_CRASHES ?= 3
soak: $(DEV_STAMP)
	FLEET_SOAK_SECONDS=$(SOAK_SECONDS) FLEET_SOAK_CLIENTS=$(SOAK_CLIENTS) \
	  FLEET_SOAK_CRASHES=$(SOAK_CRASHES) $(BIN)/python -m pytest tests/reliability -s $(PYTEST_ARGS)

# gunicorn.conf.py: gthread, FLEET_WEB_THREADS threads (256), WEB_CONCURRENCY workers (one per
# core, at most 4), JSON logs, metrics hooks; SIGTERM ends open waits and feeds first, and
# Ctrl-C stops each worker within 2 s (docs/work-loop.md).
run: $(STAMP)
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

# PostgreSQL with WORKERS gunicorn workers and one `fleet projector` (which also sweeps):
# migrate first, then serve; stopping the server (Ctrl-C) stops the projector too.
run-postgres: export PERSISTENCE_MODULE = eventsourcing.postgres
run-postgres: export POSTGRES_HOST := $(POSTGRES_HOST)
run-postgres: export POSTGRES_PORT := $(POSTGRES_PORT)
run-postgres: export POSTGRES_DBNAME := $(POSTGRES_DBNAME)
run-postgres: export POSTGRES_USER := $(POSTGRES_USER)
run-postgres: export POSTGRES_PASSWORD := $(POSTGRES_PASSWORD)
run-postgres: export POSTGRES_SCHEMA := $(POSTGRES_SCHEMA)
run-postgres: $(STAMP)
	$(BIN)/fleet db upgrade
	$(BIN)/fleet projector --sweep-every 5 & projector=$$!; \
	trap 'kill $$projector 2>/dev/null; wait $$projector' EXIT INT TERM; \
	FLEET_PROJECTOR=external FLEET_SWEEP_INTERVAL=0 WEB_CONCURRENCY=$(WORKERS) \
	  $(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

# The benchmark suite (docs/benchmarks.md): BENCHMARKS.md, bench/results.json, bench/plots/.
# Under 10 minutes on 2 cores (the 1M-event store is cached in var/bench/ after the first run);
# bench-quick runs the same suite with small sizes into bench/out/quick/ in under 2 minutes.
bench: $(DEV_STAMP) wrk
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(DEV_STAMP) wrk
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

# The HTTP load generator: Debian's wrk, installed when missing if we are root.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; \
	  else \
	    echo "make bench needs wrk: run 'sudo apt-get install wrk' (or your system's package)"; \
	    exit 1; \
	  fi; }

# The console's browser tests (tests/ui) drive Debian's headless chromium with Playwright
# (which cannot download a browser here): installed when missing if we are root.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; \
	  else \
	    echo "make test needs chromium: run 'sudo apt-get install chromium' (or your system's package)"; \
	    exit 1; \
	  fi; }

# ---- quality gates (configured in pyproject.toml; docs/quality-gates.md) ----

# ruff check (incl. the S security rules) and ruff format --check (one line per file; see the
# changes with `.venv/bin/ruff format --diff`); both run, either fails the gate.
lint: $(DEV_STAMP)
	status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check --output-format concise . || status=1; \
	exit $$status

# mypy: --strict for domain/ and application/, annotated defs required in web/ and wsgi.py.
typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# import-linter: web -> application -> domain, and domain free of web/database frameworks.
layers: $(DEV_STAMP)
	$(BIN)/lint-imports --no-cache

# sdist, then the wheel built from that sdist, into dist/.
build: $(DEV_STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# pip-audit of the installed environment: fails on a known vulnerability that has a fixed release.
audit: $(DEV_STAMP)
	rm -f $(AUDIT_REPORT)
	-$(BIN)/pip-audit --skip-editable --progress-spinner off \
	  --vulnerability-service $(AUDIT_SERVICE) $(addprefix --ignore-vuln ,$(AUDIT_IGNORE)) \
	  --format json --output $(AUDIT_REPORT)
	$(BIN)/python -c "$$AUDIT_GATE" $(AUDIT_REPORT) $(AUDIT_STRICT)

# Every gate runs, even after one fails; the summary names the ones that failed.
check:
	@failed=""; \
	for gate in lint typecheck layers build audit; do \
	  echo "==> make $$gate"; \
	  $(MAKE) --no-print-directory $$gate || failed="$$failed $$gate"; \
	done; \
	if [ -n "$$failed" ]; then echo "check: FAILED:$$failed"; exit 1; fi; \
	echo "check: all gates passed"

clean:
	rm -rf $(VENV) var .pytest_cache .coverage* htmlcov dist build *.egg-info \
	  .mypy_cache .ruff_cache .import_linter_cache

# Reads pip-audit's JSON report: fixable advisories fail; ones without a fixed release are shown.
define AUDIT_GATE
import json, sys

path, strict = sys.argv[1], sys.argv[2] == "1"
try:
    with open(path) as report_file:
        deps = json.load(report_file)["dependencies"]
except (OSError, ValueError) as exc:
    sys.exit(f"audit: pip-audit produced no report ({exc}); see its error above")
fixable, unfixed = [], []
for dep in deps:
    for vuln in dep.get("vulns", []):
        fixes = ", ".join(vuln["fix_versions"])
        row = f"{dep['name']} {dep['version']}: {vuln['id']} fixed in: {fixes or 'no release yet'}"
        (fixable if fixes else unfixed).append(row)
unaudited = [dep["skip_reason"] for dep in deps if "skip_reason" in dep]
for row in unfixed:
    print("audit: known, no fix yet (not failing):", row)
for row in fixable:
    print("audit: VULNERABLE, fix available:", row)
for reason in unaudited:
    print("audit: NOT AUDITED:", reason)
print(
    f"audit: {len(deps)} packages; {len(fixable)} fixable, {len(unfixed)} without a fix, "
    f"{len(unaudited)} not audited"
)
sys.exit(1 if fixable or (strict and unaudited) else 0)
endef
export AUDIT_GATE
