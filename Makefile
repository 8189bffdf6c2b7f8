# The two commands of the README. Everything else is `python -m autograder ...` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test release check-release selfcheck selfcheck-load reference bench clean

demo: $(VENV)/.installed        ## set up, release, train briefly, print the figures, grade reference and release
	$(PY) -m autograder demo vae

test: $(VENV)/.installed        ## the kit's own tests
	$(PY) -m pytest tests

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

release: $(VENV)/.installed     ## regenerate release/vae from assignments/vae
	$(PY) -m autograder release vae

check-release: $(VENV)/.installed
	$(PY) -m autograder release vae --check

selfcheck: $(VENV)/.installed   ## the whole catalog (about 10 min on 2 cores; make test runs its smoke part)
	$(PY) -m autograder selfcheck vae --fast

selfcheck-load: $(VENV)/.installed  ## the smoke entries graded idle, then beside 8 busy processes: same scores
	$(PY) -m autograder selfcheck vae --fast --smoke --load 8

reference: $(VENV)/.installed   ## train the reference solutions (100 epochs, 3 seeds) into solutions/vae
	$(PY) -m autograder reference vae

bench: $(VENV)/.installed       ## benchmarks: data path and grading
	$(PY) -m autograder bench data
	$(PY) -m autograder bench grade

clean:
	rm -rf build .cache .pytest_cache autograder.zip
