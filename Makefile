# framecast: setup · serve · test · bench · lint  (setup is idempotent)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup serve test unit lint typecheck bench clean

setup:
	@bash scripts/setup.sh

serve: setup
	$(VENV)/bin/framecast serve $(ARGS)

# ruff, then mypy (config in pyproject.toml: strict on the pure layers)
lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

typecheck: setup
	$(VENV)/bin/mypy src

# The whole suite runs inside a private network namespace so WebRTC peers get a host candidate.
test: setup lint
	tools/netns-run $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest -q tests/unit

bench: setup
	@for b in bench/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) web/node_modules src/framecast/web
