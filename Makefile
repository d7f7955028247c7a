# Two commands on a fresh Debian 12 machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3 python3-venv python3-dev gcc libsystemd-dev pkg-config libarchive13 \
	libarchive-tools dbus-daemon polkitd gnupg pacman-package-manager makepkg fakeroot zstd time \
	archlinux-keyring xz-utils bzip2
STAMP := $(VENV)/.installed

.PHONY: all deps run test lint bench clean

all: test

# Installs the apt packages that are missing (root, or sudo when available).
.apt-stamp:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(STAMP): pyproject.toml .apt-stamp
	@test -x $(PY) || (command -v python3.11 >/dev/null && python3.11 -m venv $(VENV) || python3 -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $@

deps: $(STAMP)

run: deps
	$(PY) -m alpmd.testing.sandbox

test: deps
	$(PY) -m pytest -q tests

lint: deps
	$(VENV)/bin/ruff check alpmd tests bench
	$(VENV)/bin/mypy alpmd

bench: deps
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .apt-stamp .pytest_cache .mypy_cache
