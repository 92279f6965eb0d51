# xpulab entry points. `make sandbox` runs the main job on the sandbox lab;
# `make test` runs lint, unit tests, ansible-test sanity and every molecule
# scenario. The tree is also the collection xpulab.gpu (galaxy.yml).
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/tools/containers.conf
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0
# Test media (../shared/media): the sandbox mirror is filled from here.
export XPULAB_MEDIA_DIR ?= $(firstword $(wildcard $(CURDIR)/../shared/media /work/shared/media) $(CURDIR)/../shared/media)

SYSTEM_PACKAGES := podman runc debootstrap uidmap slirp4netns git curl xz-utils ca-certificates make gnupg

COLLECTION_DIR := $(CURDIR)/.cache/collection
SANITY_DIR := $(CURDIR)/.cache/sanity
SANITY_PYTHON ?= 3.11

.PHONY: help deps venv images sandbox sandbox-up sandbox-down lint unit sanity collection molecule test bench clean-cache

help:
	@echo "make sandbox       bring up the sandbox lab and run site.yml on it"
	@echo "make sandbox-down  remove the sandbox containers"
	@echo "make test          lint, unit tests, sanity and all molecule scenarios"
	@echo "make collection    build the xpulab.gpu artifact and install it under .cache/collection"
	@echo "make sanity        ansible-test sanity on a copy of the tracked tree"
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
	ansible-playbook playbooks/sandbox_images.yml

sandbox-up: venv
	ansible-playbook playbooks/sandbox_up.yml

sandbox-down: venv
	ansible-playbook playbooks/sandbox_down.yml

sandbox: sandbox-up
	ansible-playbook site.yml -i sandbox

lint: venv
	yamllint --strict .
	ansible-lint --profile production

unit: images
	$(PYTHON) -m pytest -q tests/unit

# The artifact, installed where molecule/default/molecule.yml points
# ANSIBLE_COLLECTIONS_PATH (its converge runs xpulab.gpu.site from there).
collection: venv
	rm -rf $(COLLECTION_DIR)
	ansible-galaxy collection build --force --output-path $(COLLECTION_DIR) .
	ansible-galaxy collection install --no-deps --force -p $(COLLECTION_DIR)/installed $(COLLECTION_DIR)/xpulab-gpu-*.tar.gz

# ansible-test needs the tree at .../ansible_collections/xpulab/gpu: copy the
# tracked (and new, not ignored) files there, without the link collections/.
sanity: venv
	rm -rf $(SANITY_DIR)
	mkdir -p $(SANITY_DIR)/ansible_collections/xpulab/gpu
	git ls-files -z --cached --others --exclude-standard | grep -zv '^collections/' | xargs -0 sh -c \
	  'for f; do if [ -e "$$f" ] || [ -L "$$f" ]; then cp -P --parents "$$f" "$(SANITY_DIR)/ansible_collections/xpulab/gpu"; fi; done' sh
	cd $(SANITY_DIR)/ansible_collections/xpulab/gpu && ansible-test sanity --color no --python $(SANITY_PYTHON) --venv --requirements

molecule: images collection
	molecule test --all

test: lint unit sanity molecule

bench: venv
	tools/bench.sh

clean-cache:
	rm -rf $${XPULAB_CACHE:-$$HOME/.cache/xpulab}
