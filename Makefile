# callserver — two commands on a fresh Debian machine:
#   make run    set up .venv and start the server on config/callserver.yaml (foreground)
#   make test   set up .venv (+ SIPp), then lint, type checks and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: install run cluster test test-dates lint typecheck imports unit e2e cc sipp baresip chromium espeak sipvicious systemd-analyze kamailio redis postgresql bench bench-quick clean

install: $(STAMP)

# setup.py builds the compiled media extension (Cython, the machine's C compiler) in place.
$(STAMP): pyproject.toml setup.py callserver/media/_rtpio.pyx
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed: on Debian run 'apt-get install python3-venv' (as root)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/callserver run --config config/callserver.yaml

# A cluster on this machine's loopback (docs/scaling.md, "Running a cluster"): Redis, PostgreSQL
# (initdb into var/cluster/pg the first time), NODES callserver nodes and the Kamailio edge on
# 127.0.0.1:EDGE_PORT, in the foreground until Ctrl-C, which stops them all.
#   make cluster NODES=3 EDGE_PORT=5080
NODES     ?= 2
EDGE_PORT ?= 5060
cluster: install redis postgresql kamailio
	$(BIN)/callserver cluster --nodes $(NODES) --edge-port $(EDGE_PORT) --dir var/cluster

# gcc compiles the media engine's C extension during make install (without it the server runs
# the Python implementation; the tests of the compiled one fail with a hint).
cc:
	@command -v gcc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev) >/dev/null; \
	  else echo "gcc is missing: run 'sudo apt-get install gcc'"; exit 1; fi; }

# SIPp is the real peer of the end-to-end tests (Debian package sip-tester).
sipp:
	@command -v sipp >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester) >/dev/null; \
	  else echo "sipp is missing: run 'sudo apt-get install sip-tester'"; exit 1; fi; }
	@sipp -v 2>/dev/null | grep -m1 SIPp || true

# baresip (Debian baresip-core: the user agent and its modules, without the GTK and X11 front
# ends) is the SIP phone of the tests in tests/phones.
baresip:
	@command -v baresip >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq baresip-core) >/dev/null; \
	  else echo "baresip is missing: run 'sudo apt-get install baresip-core'"; exit 1; fi; }

# Chromium and its WebDriver (Debian chromium, chromium-driver) run the web portal's browser
# tests in tests/browser, headless, driven by selenium.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium chromium-driver'"; exit 1; fi; }

# svcrack (Debian sipvicious) guesses digest passwords in the lock-out test.
sipvicious:
	@command -v svcrack >/dev/null 2>&1 || command -v sipvicious_svcrack >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sipvicious) >/dev/null; \
	  else echo "svcrack is missing: run 'sudo apt-get install sipvicious'"; exit 1; fi; }

# Kamailio (Debian kamailio) is the SIP edge of several nodes (deploy/kamailio, tests/cluster)
# and bench/sip_cps's stateless responder, the reference of the server's figures.
kamailio:
	@command -v kamailio >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio) >/dev/null; \
	  else echo "kamailio is missing: run 'sudo apt-get install kamailio'"; exit 1; fi; }
	@kamailio -v 2>/dev/null | grep -m1 version || true

# Redis (Debian redis-server) holds what the nodes of a cluster share: limits, registrations.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; \
	  else echo "redis-server is missing: run 'sudo apt-get install redis-server'"; exit 1; fi; }

# PostgreSQL (Debian postgresql: initdb, pg_ctl, postgres under /usr/lib/postgresql/*/bin) is
# the cluster's central CDR store; the tests start their own server in a temp dir.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null; \
	  else echo "postgresql is missing: run 'sudo apt-get install postgresql'"; exit 1; fi; }

# espeak-ng synthesises the shipped prompts (`callserver prompts synth`); one test runs it.
espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) >/dev/null; \
	  else echo "espeak-ng is missing: run 'sudo apt-get install espeak-ng'"; exit 1; fi; }

# systemd-analyze (Debian systemd) verifies deploy/callserver.service in tests/admin/test_deploy.
systemd-analyze:
	@command -v systemd-analyze >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd) >/dev/null; \
	  else echo "systemd-analyze is missing: run 'sudo apt-get install systemd'"; exit 1; fi; }

lint: install
	$(BIN)/ruff check callserver tests bench
	$(BIN)/ruff format --check callserver tests bench

typecheck: install
	$(BIN)/mypy --strict callserver
	$(BIN)/mypy bench

imports: install
	$(BIN)/lint-imports

# worksteal: a worker that runs out takes tests queued on the other, so a few long end-to-end
# tests at the end of one worker's share do not leave the other core idle.
PYTEST = $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal

unit: cc install espeak systemd-analyze
	$(PYTEST) -m "not e2e"

e2e: cc install sipp baresip chromium espeak sipvicious kamailio redis postgresql
	$(PYTEST) -m e2e

test: cc install sipp baresip chromium espeak sipvicious systemd-analyze kamailio redis postgresql lint typecheck imports
	$(PYTEST)

# The whole suite on another date and time zone: libfaketime moves the wall clock by one offset
# in this process and every server it starts (all of them agree), and leaves the monotonic
# clock of the event loops real. libfaketime comes from PyPI (a dev dependency): Debian's
# faketime 0.9.10 makes Python 3.11's time.sleep fail with EINVAL and its timed waits hang.
# One process, no xdist workers.   make test-dates FAKE_DATE="2027-03-28 01:59" FAKE_TZ=Europe/Sarajevo
FAKE_DATE ?= 2027-12-06 12:00:00
FAKE_TZ   ?= UTC
test-dates: cc install sipp baresip chromium espeak sipvicious
	@offset=$$(( $$(TZ=$(FAKE_TZ) date -d "$(FAKE_DATE)" +%s) - $$(date +%s) )); \
	  [ $$offset -ge 0 ] && offset="+$$offset"; \
	  echo "the clock reads $(FAKE_DATE) $(FAKE_TZ) (offset $$offset s)"; \
	  TZ=$(FAKE_TZ) FAKETIME="$$offset" FAKETIME_DONT_FAKE_MONOTONIC=1 \
	  LD_PRELOAD="$$($(BIN)/python -c 'import libfaketime, pathlib; print(pathlib.Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1")')" \
	  $(BIN)/pytest -q -p no:xdist

bench: install sipp kamailio
	$(BIN)/python bench/parse_bench.py
	$(BIN)/python bench/call_path.py
	$(BIN)/python bench/sip_cps.py --overload 300
	$(BIN)/python bench/media_capacity.py
	$(BIN)/python bench/media_capacity.py --mixed
	$(BIN)/python bench/media_capacity.py --mixed --reload 300
	$(BIN)/python bench/media_capacity.py --soak 600
	$(BIN)/python bench/cdr_throughput.py
	$(BIN)/python bench/dialplan_load.py
	$(BIN)/python bench/register_path.py
	$(BIN)/python bench/register_path.py --memory
	$(BIN)/python bench/phone_call_path.py
	$(BIN)/python bench/register.py
	$(BIN)/python bench/queue_decisions.py
	$(BIN)/python bench/queue_load.py

# A short run of every benchmark (a few minutes), to see a regression at the end of each issue;
# compare against the commit before in the same run (bench/RESULTS.md says how). The short soak
# is the short mixed case too (the same load, plus its end-of-soak line).
bench-quick: install sipp kamailio
	$(BIN)/python bench/parse_bench.py --rounds 5
	$(BIN)/python bench/call_path.py --calls 500
	$(BIN)/python bench/sip_cps.py --rates 300 --duration 15 --overload 300 --overload-duration 5
	$(BIN)/python bench/media_capacity.py --calls 250,500 --duration 10
	$(BIN)/python bench/media_capacity.py --soak 10
	$(BIN)/python bench/media_capacity.py --mixed --reload 100 --duration 10
	$(BIN)/python bench/cdr_throughput.py --records 5000
	$(BIN)/python bench/dialplan_load.py --files 50 --rounds 1
	$(BIN)/python bench/register_path.py --subscribers 2000 --rounds 2
	$(BIN)/python bench/phone_call_path.py --phones 100 --rounds 2
	$(BIN)/python bench/register.py --rates 500,1000 --subscribers 3000 --call-rates 100 --call-duration 5
	$(BIN)/python bench/queue_load.py --duration 10 --settle 3

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
