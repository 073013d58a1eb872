# Two commands: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The image-backbone environment (torchvision + timm): PyPI's torchvision does not import beside the
# CPU wheel of torch 2.13.0, so it lives in its own venv with the torch/torchvision pair that does.
VVENV   ?= .venv-vision
VBIN     = $(VVENV)/bin
VSTAMP   = $(VVENV)/.installed

.PHONY: install vision demo test test-main test-vision bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all]"
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

$(VSTAMP): setup.py
	$(PYTHON) -m venv $(VVENV)
	$(VBIN)/python -m pip install -q --upgrade pip
	$(VBIN)/python -m pip install -q -e ".[vision,test]"
	$(VBIN)/python -m pip check
	touch $(VSTAMP)

vision: $(VSTAMP)

demo: $(STAMP)
	$(BIN)/tlexpert consult --scenario examples/customer_reviews.yaml --no-input
	$(BIN)/tlexpert demo

test: test-main test-vision

test-main: $(STAMP)
	$(BIN)/python -m pytest -q

test-vision: $(VSTAMP)
	$(VBIN)/python -m pytest -q tests/vision

clean:
	rm -rf $(VENV) $(VVENV) build *.egg-info
