# Two commands on a fresh Debian 12 machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3 python3-venv python3-dev gcc libsystemd-dev pkg-config libarchive13 \
	libarchive-tools dbus-daemon polkitd gnupg pacman-package-manager makepkg fakeroot zstd time \
	archlinux-keyring gettext groff-base man-db bash-completion zsh xz-utils bzip2 strace
STAMP := $(VENV)/.installed

# Installation layout (`make install DESTDIR=... PREFIX=...`); PYTHON's pip installs the package
# and its entry points (their #! names PYTHON).
PREFIX ?= /usr/local
DESTDIR ?=
PYTHON ?= $(PY)
SYSCONFDIR ?= /etc
DATADIR := $(PREFIX)/share
UNITDIR ?= $(PREFIX)/lib/systemd/system
LANGS := $(basename $(notdir $(wildcard po/*.po)))
# Catalogs compiled into the package tree (the wheel builds its own, see setup.py).
MO_FILES := $(foreach l,$(LANGS),alpmd/locale/$(l)/LC_MESSAGES/alpmd.mo)
PY_SOURCES := $(shell find alpmd -name '*.py' -not -path 'alpmd/testing/*' | sort)
MAN_OUT := build/man

.PHONY: all deps run test lint bench clean mo pot update-po man install

all: test

# Installs the apt packages that are missing (root, or sudo when available).
.apt-stamp: Makefile
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
	$(PY) -m pip install -q -e '.[test,lint,doc,systemd]' --config-settings editable_mode=compat
	@touch $@

deps: $(STAMP) mo man

# -- translations: po/alpmd.pot from the sources, po/<lang>.po -> .mo (not committed) --------------
mo: $(MO_FILES)

alpmd/locale/%/LC_MESSAGES/alpmd.mo: po/%.po
	@mkdir -p $(dir $@)
	msgfmt --check -o $@ $<

POT ?= po/alpmd.pot
pot: $(POT)

$(POT): $(PY_SOURCES) po/extract_errors.py
	PYTHONPATH=$(CURDIR) $(PY) po/extract_errors.py > $@
	xgettext -j -L Python -k_ -kN_ -kngettext:1,2 --from-code=UTF-8 --add-comments=TRANSLATORS: \
		--package-name=alpmd -o $@ $(PY_SOURCES)

update-po: $(POT)
	for po in po/*.po; do msgmerge -q --update --backup=none $$po $(POT); done

# -- manual pages: man/*.rst (and man/<lang>/*.rst) -> build/man/[<lang>/]man<N>/<page>.<N> ------
man:
	PYTHONPATH=$(CURDIR) $(PY) man/build.py --out $(MAN_OUT)

# -- installation ------------------------------------------------------------------------------
install: mo man
	$(PYTHON) -m pip install --no-deps --ignore-installed --no-warn-script-location \
		--root "$(or $(DESTDIR),/)" --prefix "$(PREFIX)" .
	install -d "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(DATADIR)/dbus-1/system-services"
	for unit in alpmd.service alpmd-refresh.service; do \
		sed 's|/usr/bin/alpm|$(PREFIX)/bin/alpm|' data/$$unit > "$(DESTDIR)$(UNITDIR)/$$unit"; done
	install -Dm644 data/alpmd-refresh.timer "$(DESTDIR)$(UNITDIR)/alpmd-refresh.timer"
	install -Dm644 data/org.alpm.conf "$(DESTDIR)$(DATADIR)/dbus-1/system.d/org.alpm.conf"
	sed 's|/usr/bin/alpm|$(PREFIX)/bin/alpm|' data/org.alpm.service \
		> "$(DESTDIR)$(DATADIR)/dbus-1/system-services/org.alpm.service"
	install -Dm644 data/org.alpm.xml "$(DESTDIR)$(DATADIR)/dbus-1/interfaces/org.alpm.xml"
	install -Dm644 data/org.alpm.policy "$(DESTDIR)$(DATADIR)/polkit-1/actions/org.alpm.policy"
	for mo in $(MO_FILES); do lang=$${mo#alpmd/locale/}; lang=$${lang%%/*}; \
		install -Dm644 $$mo "$(DESTDIR)$(DATADIR)/locale/$$lang/LC_MESSAGES/alpmd.mo"; done
	cd $(MAN_OUT) && for page in $$(find . -type f | sort); do \
		install -Dm644 $$page "$(DESTDIR)$(DATADIR)/man/$${page#./}"; done
	for cmd in alpm alpmctl alpm-repo; do \
		install -Dm644 completions/bash/$$cmd "$(DESTDIR)$(DATADIR)/bash-completion/completions/$$cmd"; \
		install -Dm644 completions/zsh/_$$cmd "$(DESTDIR)$(DATADIR)/zsh/site-functions/_$$cmd"; done

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
	rm -rf $(VENV) .apt-stamp .pytest_cache .mypy_cache alpmd/locale build po/alpmd.pot
