# Two commands: `make run` sets up and starts the whole site; `make test` sets up and runs
# the whole suite. Both begin with `make setup`, which is idempotent. `make dev` is `make run`
# in debug mode.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# manage.py under the settings `make run` serves with: DEBUG off, plus what production
# settings require and a laptop lacks (a secret key kept in .run/, loopback host names, plain
# HTTP); variables set in the environment win. See portfolio/localrun.py.
LOCAL  := $(PY) -m portfolio.localrun

.PHONY: setup run dev test test-fast lint format bench build clean tsan

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.txt changes.
$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The project itself, editable: its packages (bench too) importable from anywhere and the
# engines' extensions built in place (setup.py lists them). Again only when these files change.
$(VENV)/.project: $(VENV)/.installed pyproject.toml setup.py
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

# Rebuilds the extensions whose sources changed since (an edited .pyx or .c), in place.
build: $(VENV)/.project
	$(PY) setup.py --quiet build_ext --inplace

setup: build
	$(LOCAL) migrate --noinput --verbosity 0
	$(LOCAL) loadseed
	$(LOCAL) collectstatic --noinput --verbosity 0

run: setup
	$(LOCAL) runstack

# Debug mode: Django's error pages, static files served from static/ as they are edited.
dev: setup
	DJANGO_DEBUG=1 $(LOCAL) runstack

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not browser and not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark script; bench/_*.py are their helpers.
bench: setup
	@for script in bench/[!_]*.py; do [ -e "$$script" ] && $(PY) "$$script"; done; true

# The scheduler's C core under ThreadSanitizer (tests/engines/scheduler runs it too).
SCHED := engines/scheduler
tsan:
	mkdir -p build
	gcc -std=gnu11 -O1 -g -fsanitize=thread -DSCHED_TSAN -I$(SCHED) \
		tests/engines/scheduler/stress.c $(SCHED)/_core.c $(SCHED)/_kernels.c \
		-o build/sched-stress-tsan -lpthread
	build/sched-stress-tsan 4 100000

clean:
	rm -rf build staticfiles .run .pytest_cache *.egg-info
	find engines -name '*.so' -delete
