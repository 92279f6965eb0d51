# xpulab entry points. `make sandbox` runs the main job on the sandbox lab;
# `make test` runs lint, unit tests, ansible-test sanity and every molecule
# scenario. The tree is also the collection xpulab.gpu (galaxy.yml).
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/sandbox/containers.conf
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0
# Test media: the sandbox mirror is filled from here (the shared media folder
# beside the checkout unless XPULAB_MEDIA_DIR says otherwise).
export XPULAB_MEDIA_DIR ?= $(CURDIR)/../shared/media

# chromium: the fleet report's browser test (tests/unit/test_fleet_report_browser.py).
SYSTEM_PACKAGES := podman runc debootstrap uidmap slirp4netns git curl xz-utils zstd ca-certificates make gnupg apt-utils chromium

COLLECTION_DIR := $(CURDIR)/.cache/collection
# Times each stage into $$XPULAB_STAGE_LOG when set (.ci/run prints them).
STAGE := $(CURDIR)/tools/stage
SANITY_PYTHON ?= 3.11
# Paths to leave out of `make sanity` (none: findings are fixed, or ignored
# with a reason in tests/sanity/ignore-2.19.txt).
SANITY_EXCLUDE ?=
# pip version ansible-test bootstraps (ansible_test/_internal/python_requirements.py).
SANITY_PIP := $(HOME)/.ansible/test/cache/get_pip_$(subst .,_,$(shell sed -n "s/^ *pip='\([0-9.]*\)',$$/\1/p" \
  $(VENV)/lib/python*/site-packages/ansible_test/_internal/python_requirements.py 2>/dev/null)).py

.PHONY: help deps venv images mirror sandbox sandbox-up sandbox-down lock lint unit sanity collection molecule faults faults-ci test bench bench-scale clean-cache real-torchcodec sanity-pip

help:
	@echo "make sandbox       bring up the sandbox lab and run site.yml on it"
	@echo "make sandbox-down  remove the sandbox containers"
	@echo "make lock INVENTORY=lab  make the inventory's Python locks (uv, sha256 per wheel)"
	@echo "make test          lint, unit tests, sanity and all molecule scenarios"
	@echo "make collection    build the xpulab.gpu artifact and install it under .cache/collection"
	@echo "make sanity        ansible-test sanity on the built artifact"
	@echo "make faults        the fault suite (ansible-runner jobs against podman nodes); faults-ci: CI's subset"
	@echo "make bench         time the main job (cold, cached artifact, no change)"
	@echo "make bench-scale   the main job on 1, 2, 4 nodes: cold, warm and no-change times, controller CPU,"
	@echo "                   tasks per node, seconds per extra node; JSON and logs in reports/bench/. Settings:"
	@echo "                   BENCH_SCALE_NODES=\"1 2 4\" (8 where disk allows) BENCH_SCALE_COLD=2 (\"\": none)"
	@echo "                   BENCH_SCALE_NOCHANGE_RUNS=2 BENCH_SCALE_NODE_GIB=2 BENCH_SCALE_DIR XPULAB_BENCH_CACHE"
	@echo "make real-torchcodec TORCHCODEC_REPO=<clone>  the real TorchCodec: source build, smoke test, its own suite"

deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt
	$(STAGE) venv sh -c '$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade pip && \
	  $(VENV)/bin/pip install -q -r requirements.txt'
	touch $@

# The xpulab command (cli/xpulab_cli, pyproject.toml), editable: it runs this checkout's site.yml.
$(VENV)/bin/xpulab: pyproject.toml $(VENV)/.installed
	$(VENV)/bin/pip install -q --no-deps -e .

venv: deps $(VENV)/.installed $(VENV)/bin/xpulab

images: venv
	$(STAGE) images ansible-playbook sandbox/playbooks/images.yml

sandbox-up: venv
	ansible-playbook sandbox/playbooks/up.yml

sandbox-down: venv
	ansible-playbook sandbox/playbooks/down.yml

sandbox: sandbox-up
	ansible-playbook site.yml -i inventories/sandbox

# The Python locks of an inventory (playbooks/lock.yml, docs/security.md):
# uv pip compile --generate-hashes per node target, from the inventory's indexes.
INVENTORY ?= lab
lock: venv
	ansible-playbook playbooks/lock.yml -i $(INVENTORY)

lint: venv
	$(STAGE) lint sh -c 'yamllint --strict . && ansible-lint --profile production'

unit: images
	$(STAGE) unit $(PYTHON) -m pytest -q tests/unit

# The artifact, installed where molecule/default/molecule.yml points
# ANSIBLE_COLLECTIONS_PATH (its converge runs xpulab.gpu.site from there).
collection: venv
	rm -rf $(COLLECTION_DIR)
	ansible-galaxy collection build --force --output-path $(COLLECTION_DIR) .
	ansible-galaxy collection install --no-deps --force -p $(COLLECTION_DIR)/installed $(COLLECTION_DIR)/xpulab-gpu-*.tar.gz

# ansible-test sanity on what ships: the built artifact, unpacked into
# <tmp>/ansible_collections/xpulab/gpu (outside any git checkout, since
# ansible-test lists a checkout's files with git), beside the containers.podman
# it depends on (galaxy.yml; the venv's copy) for the import test. Ignores:
# tests/sanity/.
sanity: venv
	@$(MAKE) --no-print-directory sanity-pip
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && dest=$$dir/ansible_collections/xpulab/gpu && mkdir -p $$dest && \
	mkdir -p $$dir/ansible_collections/containers && ln -s "$$($(VENV)/bin/python -c 'import ansible_collections.containers.podman as m; print(list(m.__path__)[0])')" $$dir/ansible_collections/containers/podman && \
	ansible-galaxy collection build --output-path $$dir . >/dev/null && tar -xzf $$dir/xpulab-gpu-*.tar.gz -C $$dest && \
	cd $$dest && $(STAGE) sanity ansible-test sanity --color no --local --python $(SANITY_PYTHON) $(addprefix --exclude ,$(SANITY_EXCLUDE))

# ansible-test bootstraps pip in its per-test venvs (~/.ansible/test/venv,
# reused between runs) with get-pip.py from ci-files.testing.ansible.com,
# which CI cannot reach: this stand-in in its cache uses the standard
# library's ensurepip, then pip installs from PyPI. Made by a second make
# (sanity's recipe), so SANITY_PIP is read from the venv once it exists: on
# a fresh clone the first make is parsed before the venv is made.
sanity-pip: $(SANITY_PIP)

$(SANITY_PIP): | venv
	@case "$(@F)" in get_pip_.py) echo "cannot read the pip version ansible-test bootstraps from $(VENV)" >&2; exit 1;; esac
	mkdir -p $(@D) && printf '%s\n' \
	  '"""get-pip.py stand-in (xpulab Makefile): ensurepip, then pip install the arguments."""' \
	  'import subprocess, sys' \
	  'subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])' \
	  'args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]' \
	  'subprocess.check_call([sys.executable, "-m", "pip", "install", *args])' > $@

# Each scenario in turn (as molecule test --all would), timed.
MOLECULE_SCENARIOS := $(sort $(notdir $(wildcard molecule/*)))
molecule: images collection
	@for s in $(MOLECULE_SCENARIOS); do $(STAGE) molecule-$$s molecule test -s $$s || exit 1; done

mirror: images
	$(STAGE) mirror ansible-playbook sandbox/playbooks/mirror.yml

# The fault suite (tests/faults, README's table): every case; faults-ci
# leaves out the cases marked slow (minutes each: builds, converged nodes).
# Each prints its summary table (case, outcome, seconds; tests/faults/summary.py)
# from the JUnit report it writes to reports/faults/.
FAULTS_REPORTS := $(CURDIR)/reports/faults
faults: mirror
	@mkdir -p $(FAULTS_REPORTS)
	cd tests/faults && { $(PYTHON) -m pytest -q -ra --junitxml=$(FAULTS_REPORTS)/faults.xml; rc=$$?; \
	  $(PYTHON) summary.py $(FAULTS_REPORTS)/faults.xml; exit $$rc; }

faults-ci: mirror
	@mkdir -p $(FAULTS_REPORTS)
	cd tests/faults && { $(STAGE) faults-ci $(PYTHON) -m pytest -q -ra -m "not slow" --junitxml=$(FAULTS_REPORTS)/faults-ci.xml; \
	  rc=$$?; $(PYTHON) summary.py $(FAULTS_REPORTS)/faults-ci.xml; exit $$rc; }

test: lint unit sanity molecule faults-ci

# The real TorchCodec, opt-in and outside `make test` (CI cannot reach the
# repository): TORCHCODEC_REPO is a clone of it with the pull-request refs
# (README, "The real TorchCodec"); one node container, REAL_NODE.
TORCHCODEC_REPO ?=
REAL_NODE ?= xpulab-real-torchcodec
TORCHCODEC_METHOD ?= source
real-torchcodec: images
	@test -n "$(TORCHCODEC_REPO)" || { echo "usage: make real-torchcodec TORCHCODEC_REPO=<clone of https://github.com/meta-pytorch/torchcodec>"; exit 2; }
	$(STAGE) real-torchcodec ansible-playbook sandbox/playbooks/real_torchcodec.yml \
	  -e @sandbox/playbooks/vars/real_torchcodec.yml -e sandbox_real_repo=$(abspath $(TORCHCODEC_REPO)) -e sandbox_real_node=$(REAL_NODE) \
	  -e torchcodec_method=$(TORCHCODEC_METHOD)

bench: venv
	sandbox/bin/bench.sh

# Fleet-size scaling (sandbox/bin/bench_scale.py; its settings: make help). It
# replaces the sandbox nodes (the mirror stays) and leaves the last size's nodes up.
bench-scale: venv
	$(PYTHON) sandbox/bin/bench_scale.py

clean-cache:
	rm -rf $${XPULAB_CACHE:-$$HOME/.cache/xpulab}
