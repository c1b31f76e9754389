# obs-storage: the two set-up commands are `make up` (local stack) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STATE_DIR := $(CURDIR)/.pulumi-state
PASSPHRASE_FILE := $(STATE_DIR)/passphrase
STACKS := local staging prod

.PHONY: help venv test plan up down check-pulumi check-docker policy-pack

help:
	@echo "make up     create .venv, log into a local state backend, bring up the local stack"
	@echo "make down   destroy the local stack"
	@echo "make test   run the test suite (no Pulumi CLI, Docker or cloud credentials needed)"
	@echo "make plan   offline plan of every stack, with policies"
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

test: venv
	$(PY) -m pytest -q -n 2

plan: venv
	@for s in $(STACKS); do echo "== $$s"; $(PY) -m tools.plan --stack $$s || exit 1; done

check-pulumi:
	@command -v pulumi >/dev/null 2>&1 || { \
	  echo "error: the Pulumi CLI is not installed. Install it (https://www.pulumi.com/docs/iac/download-install/) and run 'make up' again."; exit 1; }

check-docker:
	@command -v docker >/dev/null 2>&1 || { \
	  echo "error: the docker command is not installed. Install Docker Engine or Docker Desktop and run 'make up' again."; exit 1; }
	@docker info >/dev/null 2>&1 || { \
	  echo "error: no Docker engine answers on this machine (docker info failed). Start Docker and run 'make up' again."; exit 1; }

# The local stack keeps its state in ./.pulumi-state. Its secrets are encrypted with a passphrase
# that is generated once into .pulumi-state/passphrase (mode 600) unless you export your own
# PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE.
$(PASSPHRASE_FILE):
	@mkdir -p $(STATE_DIR) && chmod 700 $(STATE_DIR)
	@umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

# PULUMI_BACKEND_URL points only these commands at the local state, leaving the user's own
# `pulumi login` untouched.
LOCAL_PULUMI = PULUMI_BACKEND_URL=file://$(STATE_DIR) PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}

up: check-pulumi check-docker venv $(PASSPHRASE_FILE)
	@export $(LOCAL_PULUMI); \
	  pulumi stack select local 2>/dev/null || pulumi stack init local --secrets-provider passphrase; \
	  pulumi up --stack local

down: check-pulumi
	@export $(LOCAL_PULUMI); pulumi destroy --stack local
