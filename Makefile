# Stockade: the two commands of the README's quick start, and the pieces they are made of.
#   make demo   set up, then run the main job end to end
#   make test   set up, then run bandit and the whole test suite
# Both need root on Debian 12 (apt-get, namespaces, cgroups).

PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PACKAGES := engine trust policies hardening stockade

.PHONY: setup host-deps venv interop bytecode demo test lint bench lock clean

setup: host-deps venv interop bytecode

# Byte-compile our packages: a shell with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every
# module on every `stockade` call (~140 ms). Only changed files are recompiled.
bytecode: venv
	$(BIN)/python -m compileall -q $(PACKAGES)

host-deps: $(VENV)/.host-deps
$(VENV)/.host-deps: scripts/install-host-deps.sh
	./scripts/install-host-deps.sh
	mkdir -p $(VENV) && touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: $(VENV)/.host-deps requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	# compat: a plain path entry in a .pth file; the default import-finder hook costs ~10 ms in every
	# Python process (stockade-runtime is started four times per container by containerd).
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

# sigstore-js (@sigstore/verify), the independent verifier of the bundles Stockade writes; pinned
# with integrity hashes in package-lock.json.
SIGSTORE_JS := tests/interop/sigstore-js
interop: $(SIGSTORE_JS)/node_modules/.package-lock.json
$(SIGSTORE_JS)/node_modules/.package-lock.json: $(SIGSTORE_JS)/package-lock.json $(VENV)/.host-deps
	cd $(SIGSTORE_JS) && npm ci --no-audit --no-fund --loglevel=error

demo: setup
	./scripts/demo.sh

lint: venv
	$(BIN)/bandit -q -ll -c pyproject.toml -r $(PACKAGES)

test: setup lint
	$(BIN)/python -m pytest -p no:cacheprovider tests

bench: setup
	$(BIN)/python -m benchmarks

# Regenerate the hash-pinned lock files (needs network to PyPI). Not part of set-up.
LOCKENV := $(VENV)-lock
lock:
	test -x $(LOCKENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCKENV) && $(LOCKENV)/bin/pip install --quiet pip-tools; }
	$(LOCKENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url -o requirements.lock pyproject.toml
	$(LOCKENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url --extra dev -o requirements-dev.lock pyproject.toml requirements-build.in

clean:
	rm -rf $(VENV) $(VENV)-lock build *.egg-info
