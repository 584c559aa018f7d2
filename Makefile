# Two commands do everything on a fresh machine:
#   make book   set up, then build the executed HTML book into _build/html
#   make test   set up, then run every test (unit, property, nbval, structural book build,
#               browser tests of the built book)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBIAN_DATA := /usr/share/datasets/fashion-mnist

.PHONY: book test setup data browser-setup unit notebooks structure browser clean-notebooks benchmark gpu-check clean

setup: $(STAMP) data

# Reinstall only when the dependency list changes. torch==2.13.0 is a CPU build on this kind of
# machine; the pins live in pyproject.toml ([book] and [test] extras).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (d2lcore)" >/dev/null
	touch $@

# FashionMNIST: the Debian package when we are root with apt, else the loader's verified download.
data: $(STAMP)
	@if [ ! -d $(DEBIAN_DATA) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing the Debian package dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi
	$(BIN)/python -m d2lcore.data

# The environment the book executes its notebooks in; nbval runs them in it too. D2LCORE_STATIC
# makes every explorer render its static view: frames behind a slider that move in the browser
# with no kernel.
BOOK_ENV := D2LCORE_STATIC=1

# Executes every notebook that is not in the execution cache (_build/.jupyter_cache), WORKERS at a
# time (_ext/execute_book.py; each kernel with its share of the cores), then builds the pages from
# the cache. WORKERS=1 leaves the execution to jupyter-book, one notebook after another.
book: setup
	$(BOOK_ENV) $(BIN)/python _ext/execute_book.py --workers $(WORKERS)
	$(BOOK_ENV) $(BIN)/jupyter-book build . --builder html $(BOOK_FLAGS)
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# Each notebook executes once: `notebooks` stores every notebook nbval passed into the book's
# execution cache, and `book` (through `browser`) then executes only the others.
test: setup clean-notebooks unit notebooks structure browser

# Within `make test`, the book is built after nbval has filled the cache, even under make -j.
# Every page is re-read (--all): Sphinx re-reads only notebooks whose file changed, so a page
# whose outputs nbval just refreshed (d2lcore changed, the notebook did not) would keep the old HTML.
ifneq ($(filter test,$(MAKECMDGOALS)),)
book: | notebooks
book: BOOK_FLAGS = --all
endif

# Tests run in WORKERS processes at once (pytest-xdist); WORKERS=1 runs them in this one. Each
# worker's torch then gets its share of the cores: two workers with a thread per core each spin
# four OpenMP threads on two cores, and a test that trains a small model takes many times longer.
WORKERS ?= 2
xdist = $(if $(filter-out 0 1,$(WORKERS)),-n $(WORKERS) $(1))
THREADS = $$(( $$(nproc) / $(WORKERS) > 0 ? $$(nproc) / $(WORKERS) : 1 ))
SHARE = $(if $(filter-out 0 1,$(WORKERS)),OMP_NUM_THREADS=$(THREADS) D2LCORE_THREADS=$(THREADS))

unit: $(STAMP)
	$(SHARE) $(BIN)/python -m pytest tests -q --ignore=tests/browser $(call xdist)

# Re-run every notebook in the table of contents; claim-check cells fail loudly. nbval runs each
# as the book build does (BOOK_ENV, the notebook's folder, its own kernelspec, installed in the
# venv by setup), and tests/nbval_cache.py, the pytest wrapper that loads it as a plugin, stores
# every notebook whose cells all passed into the book's execution cache.
# WORKERS notebooks run at once (pytest-xdist; --dist loadfile keeps a notebook's cells in one
# kernel, in order), each kernel with its share of the CPUs; WORKERS=1 runs them one by one.
notebooks: $(STAMP)
	$(BOOK_ENV) $(BIN)/python tests/nbval_cache.py -q -p no:cacheprovider --nbval-lax --nbval-cell-timeout=300 \
		$(call xdist,--dist loadfile) $$($(BIN)/python tests/toc.py --heaviest-first)

# Build the book without executing it, with every warning an error: broken references,
# missing toc entries, bad math or bibliography keys.
structure: $(STAMP)
	rm -rf _build/structure
	sed 's/^  execute_notebooks: .*/  execute_notebooks: "off"/' _config.yml > _build_structure_config.yml
	$(BIN)/jupyter-book build . --builder html --path-output _build/structure \
		--config _build_structure_config.yml -W -n --keep-going; \
		status=$$?; rm -f _build_structure_config.yml; exit $$status

# Headless Chromium drives the built book (Playwright's Python client with the system browser).
# A small CJK font lets screenshots show the Chinese term names.
browser-setup:
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing$$missing for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

browser: book browser-setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser $(call xdist)

clean-notebooks:
	$(BIN)/python tests/toc.py --check-clean

# Never part of `make test`. book.py executes every notebook once more, timing each cell.
benchmark: setup
	$(BIN)/python benchmarks/trainer.py
	$(BIN)/python benchmarks/explorers.py
	$(BIN)/python benchmarks/lenet_speed.py
	$(BOOK_ENV) $(BIN)/python benchmarks/book.py
	$(BOOK_ENV) $(BIN)/python benchmarks/book.py --jobs $(WORKERS)

# On a machine with CUDA: unit tests, both benchmarks and nbval over the whole book on the GPU,
# reported in _build/gpu-report.md. Without CUDA it says so and exits 0.
gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf _build
