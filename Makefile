# Two commands: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install demo test bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all]"
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tlexpert consult --scenario examples/customer_reviews.yaml --no-input
	$(BIN)/tlexpert demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
