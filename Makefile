# xpulab entry points. `make sandbox` runs the main job on the sandbox lab;
# `make test` runs lint, unit tests and every molecule scenario.
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

SYSTEM_PACKAGES := podman runc debootstrap uidmap slirp4netns git curl xz-utils ca-certificates make gnupg apt-utils

.PHONY: help deps venv images sandbox sandbox-up sandbox-down lint unit molecule test bench clean-cache

help:
	@echo "make sandbox       bring up the sandbox lab and run site.yml on it"
	@echo "make sandbox-down  remove the sandbox containers"
	@echo "make test          lint, unit tests and all molecule scenarios"
	@echo "make bench         time the main job (cold, cached artifact, no change)"

deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

venv: deps $(VENV)/.installed

images: venv
	ansible-playbook sandbox/playbooks/images.yml

sandbox-up: venv
	ansible-playbook sandbox/playbooks/up.yml

sandbox-down: venv
	ansible-playbook sandbox/playbooks/down.yml

sandbox: sandbox-up
	ansible-playbook site.yml -i inventories/sandbox

lint: venv
	yamllint --strict .
	ansible-lint --profile production

unit: images
	$(PYTHON) -m pytest -q tests/unit

molecule: images
	molecule test --all

test: lint unit molecule

bench: venv
	sandbox/bin/bench.sh

clean-cache:
	rm -rf $${XPULAB_CACHE:-$$HOME/.cache/xpulab}
