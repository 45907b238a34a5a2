# Two entry points (see README): `make demo` and `make test`.
# Everything is installed from the project's own files: uv (pinned) into .tools/,
# then the locked dependencies (uv.lock) into .venv/.
UV_VERSION := 0.13.8
PYTHON ?= python3
UV := .tools/bin/uv

.PHONY: demo test test-slow install lint typecheck check bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen
	touch $@

# npm tools of the tests (test-tools/package-lock.json), only where npm exists
test-tools/node_modules/.package-lock.json: test-tools/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd test-tools && npm ci --no-audit --no-fund; \
	else echo "warning: npm missing; the OIDC tests need test-tools (npm ci)" >&2; fi

install: .venv/.installed test-tools/node_modules/.package-lock.json

demo: install
	.venv/bin/utfall demo

# the whole suite but the slow lane, on two workers (one per core; files stay together)
test: install
	bash scripts/test.sh -n 2 --dist loadfile -m "not slow"

# the slow lane (marker "slow"): PySpark parity at national scale, demo-scale regions,
# generative sweeps and the API fuzzer; CI runs it after `make test`
test-slow: install
	bash scripts/test.sh -n 2 --dist loadfile -m slow

lint: install
	.venv/bin/ruff check src tests benchmarks

typecheck: install
	.venv/bin/mypy

# what CI runs: lint, type check, then both test lanes
check: lint typecheck test test-slow

bench: install
	.venv/bin/python benchmarks/run_all.py

clean:
	rm -rf .venv .tools data out test-artifacts
