# Two entry points (see README): `make demo` and `make test`.
# Everything is installed from the project's own files: uv (pinned) into .tools/,
# then the locked dependencies (uv.lock) into .venv/.
UV_VERSION := 0.13.8
PYTHON ?= python3
UV := .tools/bin/uv

.PHONY: demo test install lint bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen
	touch $@

install: .venv/.installed

demo: install
	.venv/bin/utfall demo

test: install
	bash scripts/test.sh

lint: install
	.venv/bin/ruff check src tests benchmarks

bench: install
	.venv/bin/python benchmarks/run_all.py

clean:
	rm -rf .venv .tools data out test-artifacts
