# Two commands: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DDB_LOCAL_VERSION := 2.9.30
DDB_LOCAL := .tools/dynamodb-local/emulator/DynamoDBLocal.jar

.PHONY: run test venv tools java chromium contract test-unit test-integration test-e2e test-infra bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# Java 17 runs DynamoDB Local; install it from Debian when root and missing.
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "java not found: make run falls back to moto; integration tests need Java 17"; fi; }

# Debian's Chromium runs the portal's browser test (Playwright never downloads a browser here).
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else echo "chromium not found: the portal's browser test is skipped outside CI"; fi; }

# Amazon's DynamoDB Local ships inside the npm package amplify-dynamodb-simulator.
$(DDB_LOCAL):
	@mkdir -p .tools
	cd .tools && npm pack --silent amplify-dynamodb-simulator@$(DDB_LOCAL_VERSION) >/dev/null \
	  && rm -rf dynamodb-local && mkdir -p dynamodb-local \
	  && tar xzf amplify-dynamodb-simulator-$(DDB_LOCAL_VERSION).tgz -C dynamodb-local --strip-components=1 \
	  && rm amplify-dynamodb-simulator-$(DDB_LOCAL_VERSION).tgz
	@test -f $@

# Spectral (with the OWASP API ruleset), openapi-typescript and axe-core (the portal browser test injects
# its axe.min.js), pinned in tools/npm/package-lock.json.
NPM_TOOLS := tools/npm/node_modules/.installed
$(NPM_TOOLS): tools/npm/package.json tools/npm/package-lock.json
	npm ci --prefix tools/npm --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

tools: java chromium $(DDB_LOCAL) $(NPM_TOOLS)

run: venv java $(DDB_LOCAL)
	$(PY) -m local.run

test-unit: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

test-integration: venv tools
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

test-e2e: venv tools
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e

test-infra:
	bash infra/check.sh

# ruff (style, imports, bugbear) and mypy on chalicelib/; settings in pyproject.toml.
# Both always run, so one pass reports every finding; either failing fails the target.
lint: venv
	@rc=0; $(PY) -m ruff check chalicelib || rc=1; $(PY) -m mypy chalicelib || rc=1; exit $$rc

# The contract under Spectral with the OWASP API ruleset (.spectral.yaml says each rule turned off and
# why); any finding, warning or error, fails. tools/problem_responses.py and tools/contract_rules.py
# apply the mechanical rules to openapi.yaml.
contract: $(NPM_TOOLS)
	NODE_PATH=$(CURDIR)/tools/npm/node_modules tools/npm/node_modules/.bin/spectral lint openapi.yaml \
	  --ruleset .spectral.yaml --fail-severity=warn

# Lint and the contract first; then unit and integration tests on both cores; then the browser and fuzz tests, with the offline
# infrastructure checks (cdk synth, cfn-lint, cdk-nag) running beside them and awaited.
test: venv tools
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory contract
	$(PY) -m pytest -q -p no:cacheprovider -n 2 tests/unit tests/integration
	@mkdir -p .tools; rm -f .tools/infra-check.rc; \
	if [ -f infra/check.sh ]; then \
	  ( bash infra/check.sh > .tools/infra-check.log 2>&1; echo $$? > .tools/infra-check.rc ) & infra_pid=$$!; \
	else echo 0 > .tools/infra-check.rc; infra_pid=; fi; \
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e; e2e=$$?; \
	if [ -n "$$infra_pid" ]; then wait $$infra_pid; echo "---- infra/check.sh"; cat .tools/infra-check.log; fi; \
	infra=$$(cat .tools/infra-check.rc); \
	echo "e2e exit $$e2e, infra exit $$infra"; test $$e2e -eq 0 -a $$infra -eq 0

bench: venv tools
	$(PY) -m bench.run
	$(PY) -m bench.booking
	$(PY) -m bench.scale
	$(PY) -m bench.coldstart
	$(PY) -m bench.events
	$(PY) -m bench.records
	$(PY) -m bench.notify

clean:
	rm -rf $(VENV) .tools .local .pytest_cache
