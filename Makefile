# fedgpu.platform: the two commands operators and CI need.
#   make demo       bring up the local platform (containers acting as VMs) and run site.yml on it
#   make demo-down  remove it
#   make journeys   the researcher's journeys on the running local platform (tests/integration/demo)
#   make test       everything the project tests (what CI runs)
#   make ee         build the execution environment image (needs quay.io, Galaxy and PyPI)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= $(CURDIR)/.venv
export VENV
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Package cache for the containers (apt-cacher-ng on the project network's gateway): 1 or 0.
export FEDGPU_APT_CACHE ?= 1
ifeq ($(FEDGPU_APT_CACHE),1)
export FEDGPU_APT_PROXY ?= http://$(shell tools/local/substrate.sh gateway):3142
endif

ee_tarball := ee/fedgpu-platform-$(shell sed -n 's/^version: *//p' galaxy.yml).tar.gz

.PHONY: ee help bootstrap substrate demo demo-down demo-test journeys test lint sanity changelog unit openstack molecule benchmark

help:
	@sed -n 's/^#   //p' Makefile

bootstrap:
	@tools/bootstrap-host.sh

substrate: bootstrap
	@tools/local/substrate.sh all

demo: substrate
	ansible-playbook playbooks/local_up.yml
	ansible-playbook playbooks/site.yml
	@ansible-playbook playbooks/local_status.yml

demo-down: bootstrap
	ansible-playbook playbooks/local_down.yml

# The demo stage of make test alone: make demo twice, the journeys, make demo-down.
demo-test: substrate
	@FEDGPU_STAGES=demo tools/run-tests.sh

journeys: bootstrap
	python tests/integration/demo/journeys.py $(JOURNEYS)

test: substrate
	@tools/run-tests.sh

# Single stages, for development (make test runs them all).
lint sanity changelog unit openstack molecule: bootstrap
	@FEDGPU_STAGES=$@ tools/run-tests.sh $(if $(filter molecule,$@),$(SCENARIOS),)

benchmark: substrate
	@tools/run-benchmarks.sh

ee: bootstrap
	ansible-galaxy collection build --force --output-path ee/ .
	@test -f $(ee_tarball) || { echo "execution-environment.yml names another version than galaxy.yml" >&2; exit 1; }
	ansible-builder build -f execution-environment.yml -t fedgpu-platform-ee:$$(sed -n 's/^version: *//p' galaxy.yml)
