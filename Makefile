# Fresh machine: `make demo` (install + the demo on the bundled models), `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NODE_CLIENT := clients/node

.PHONY: demo test install install-test install-verify protos lint docker clean

demo: $(VENV)/.installed
	$(BIN)/onnxplain demo --out out/demo

test: $(VENV)/.installed-test $(NODE_CLIENT)/node_modules/.package-lock.json
	$(BIN)/python -m pytest

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable .
	touch $@

# auto_LiRPA 0.3 (the index's only release) pins torch<1.13: installed without its pins, and made to run on
# current torch by service/verify/lirpa_compat.py. A 0.7.x installed from source is used as it is.
AUTO_LIRPA := "auto_LiRPA>=0.3,<0.8"

# The test extra pulls torch + torchvision (a CUDA build, about 5 GB) for the PyTorch reference checks and EVA.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps $(AUTO_LIRPA)
	touch $@ $(VENV)/.installed

# The server with verified methods (EVA), without the test tools.
install-verify: $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable ".[verify]"
	$(BIN)/python -m pip install --quiet --no-deps $(AUTO_LIRPA)

$(NODE_CLIENT)/node_modules/.package-lock.json: $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund

protos: $(VENV)/.installed-test
	$(BIN)/python protos/generate.py

lint: $(VENV)/.installed-test
	$(BIN)/hadolint Dockerfile

docker:
	docker build -t onnxplain:latest .

clean:
	rm -rf $(VENV) out $(NODE_CLIENT)/node_modules .pytest_cache
