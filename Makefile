# obs-storage: the two set-up commands are `make up` (local stack) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE_DIR ?= $(CURDIR)/.pulumi-state
PASSPHRASE_FILE := $(STATE_DIR)/passphrase
# Every stack of the project, Thanos spokes included: one Pulumi.<stack>.yaml each.
STACKS := $(sort $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml)))

.PHONY: help venv test test-integration verify plan cost bench up down check-pulumi check-docker check-up policy-pack mutation config-reference

help:
	@echo "make up     create .venv, log into a local state backend, bring up the local stack"
	@echo "make down   destroy the local stack"
	@echo "make test   run the test suite (no Pulumi CLI, Docker or cloud credentials needed)"
	@echo "make test-integration  the plans against real servers on 127.0.0.1 (SeaweedFS, moto, Prometheus)"
	@echo "make verify check the deployed local stack for real (STACK=staging|prod: that stack; ARGS=--json ...)"
	@echo "make plan   offline plan of every stack, with policies (STACK=staging: one stack; ARGS=--json)"
	@echo "make cost   monthly cost and retention report of every stack (STACK=..., ARGS=...)"
	@echo "make config-reference  regenerate docs/configuration-reference.md from the config model"
	@echo "make bench  offline plan time of each stack against the import time of its provider SDKs"
	@echo "make mutation  mutation score of the tested modules (slow; MODULES=\"components/core/config.py\" or all, JOBS=2 mutants at once)"
	@echo "               MODULES=all PART=1/16 ... PART=16/16 JOBS=2: every module in sixteen parts of about 42 min each (docs/testing.md)"
	@echo "make policy-pack  install the policy pack's virtualenv (for pulumi preview --policy-pack policies)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The Pulumi CLI runs the policy pack from policies/ with its own virtualenv (PulumiPolicy.yaml).
policies/.venv/.installed: policies/requirements.txt
	$(PYTHON) -m venv policies/.venv
	policies/.venv/bin/pip install --quiet --disable-pip-version-check -r policies/requirements.txt
	touch $@

policy-pack: policies/.venv/.installed

# The alert-rule tests need promtool: the Prometheus 3 one .ci/install-prometheus unpacks from
# Debian's packages into a cache (downloaded once), unless OBS_PROMETHEUS_BIN_DIR already names
# one. Where it cannot run (no apt), those tests say they are skipped and why.
test: venv
	@dir="$${OBS_PROMETHEUS_BIN_DIR:-}"; \
	  [ -n "$$dir" ] || dir="$$(.ci/install-prometheus)" || { \
	    echo "note: no promtool (.ci/install-prometheus needs apt and Debian's archive); the alert-rule tests will be skipped" >&2; dir=""; }; \
	  echo "$(PY) -m pytest -q -n 2   (promtool from $${dir:-nowhere})"; \
	  OBS_PROMETHEUS_BIN_DIR="$$dir" $(PY) -m pytest -q -n 2

# The integration suite: extra pinned packages (real servers among them), Prometheus 3.x and
# amtool unpacked from Debian's packages by .ci/install-prometheus and .ci/install-alertmanager
# (without amtool its checks are skipped), and Debian 12's docker-compose and cloud-init
# (.ci/install-ec2-validators); its tests start and stop the servers.
$(VENV)/.integration: $(VENV)/.installed requirements-integration.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-integration.txt
	touch $@

test-integration: $(VENV)/.integration
	.ci/install-ec2-validators
	@dir="$${OBS_AMTOOL_BIN_DIR:-}"; \
	  [ -n "$$dir" ] || dir="$$(.ci/install-alertmanager)" || { \
	    echo "note: no amtool (.ci/install-alertmanager needs apt and Debian's archive); the Alertmanager config checks will be skipped" >&2; dir=""; }; \
	  echo "$(PY) -m pytest -q -n 2 -m integration tests/integration   (amtool from $${dir:-nowhere})"; \
	  OBS_AMTOOL_BIN_DIR="$$dir" OBS_PROMETHEUS_BIN_DIR="$$(.ci/install-prometheus)" $(PY) -m pytest -q -n 2 -m integration tests/integration

# Offline tools for one stack (`make plan STACK=staging ARGS=--json`) or every stack; they need
# only the project's virtualenv, which these targets create first.
plan: venv
	@$(PY) -m tools.plan $(foreach s,$(or $(STACK),$(STACKS)),--stack $(s)) $(ARGS)

cost: venv
	@$(PY) -m tools.cost $(foreach s,$(or $(STACK),$(STACKS)),--stack $(s)) $(ARGS)

# docs/configuration-reference.md, generated from the config model (tests fail when it is stale).
config-reference: venv
	$(PY) -m tools.config_reference --write

bench: venv
	$(PY) -m tools.bench_plan $(STACK)

# Mutation testing with cosmic-ray in a virtualenv of its own (.ci/mutation.py says how it works).
# Not part of `make test`: every mutant is one run of the tests that execute its line.
MUTATION_VENV := .venv-mutation

$(MUTATION_VENV)/.installed: requirements-mutation.txt
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-mutation.txt
	touch $@

mutation: venv $(MUTATION_VENV)/.installed
	$(PY) .ci/mutation.py --jobs $(or $(JOBS),1) $(if $(PART),--part $(PART)) $(MODULES)

# The checks name the command that was run: `make down` must not say "run 'make up' again".
AGAIN = $(or $(firstword $(filter up down verify,$(MAKECMDGOALS))),up)
PULUMI_CHECK = command -v pulumi >/dev/null 2>&1 || { \
  echo "error: the Pulumi CLI is not installed. Install it (https://www.pulumi.com/docs/iac/download-install/) and run 'make $(AGAIN)' again."; false; }
DOCKER_CHECK = if ! command -v docker >/dev/null 2>&1; then \
  echo "error: the docker command is not installed. Install Docker Engine or Docker Desktop and run 'make $(AGAIN)' again."; false; \
  elif ! docker info >/dev/null 2>&1; then \
  echo "error: no Docker engine answers on this machine (docker info failed). Start Docker and run 'make $(AGAIN)' again."; false; fi

check-pulumi:
	@$(PULUMI_CHECK)

check-docker:
	@$(DOCKER_CHECK)

# `make up` needs both: a new machine often lacks both, and one run should name everything missing.
check-up:
	@ok=true; { $(PULUMI_CHECK); } || ok=false; { $(DOCKER_CHECK); } || ok=false; $$ok

# The local stack keeps its state in ./.pulumi-state. Its secrets are encrypted with your
# passphrase when you export PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE (even an
# empty one); otherwise with one generated once into .pulumi-state/passphrase (mode 600), and
# only then is PULUMI_CONFIG_PASSPHRASE_FILE set here (Pulumi would ignore it beside
# PULUMI_CONFIG_PASSPHRASE: pulumi/pulumi pkg/secrets/passphrase/manager.go, readPassphrase).
ifeq ($(origin PULUMI_CONFIG_PASSPHRASE)$(origin PULUMI_CONFIG_PASSPHRASE_FILE),undefinedundefined)
GENERATED_PASSPHRASE := $(PASSPHRASE_FILE)
PASSPHRASE_ENV := PULUMI_CONFIG_PASSPHRASE_FILE=$(PASSPHRASE_FILE)
endif

$(PASSPHRASE_FILE):
	@mkdir -p $(STATE_DIR) && chmod 700 $(STATE_DIR)
	@umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

# PULUMI_BACKEND_URL points only these commands at the local state, leaving the user's own
# `pulumi login` untouched.
LOCAL_PULUMI = PULUMI_BACKEND_URL=file://$(STATE_DIR) $(PASSPHRASE_ENV)

up: check-up venv $(GENERATED_PASSPHRASE)
	@export $(LOCAL_PULUMI); \
	  pulumi stack select local 2>/dev/null || pulumi stack init local --secrets-provider passphrase; \
	  pulumi up --stack local

down: check-pulumi
	@export $(LOCAL_PULUMI); pulumi destroy --stack local

# The local stack reads its outputs from the local state; other stacks from your `pulumi login`.
verify: check-pulumi venv
	@$(if $(filter-out local,$(or $(STACK),local)),,export $(LOCAL_PULUMI);) $(PY) -m tools.verify --stack $(or $(STACK),local) $(ARGS)
