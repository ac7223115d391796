# nabla — thin wrapper around CMake.
#   make            build everything into build/
#   make test       build and run the default test suite
#   make test-asan  the same under AddressSanitizer + UBSan (build-asan/)
#   make bench      nabla against PyTorch 2.x (eager, torch.compile), JAX, Debian's
#                   PyTorch and ONNX Runtime on the Fashion-MNIST models and the
#                   sequence models gru and transformer (a few
#                   minutes, once several GB of peers from PyPI are installed in
#                   ~/.cache/nabla-bench-venv; not part of make test): bench/compare.sh
#   make bench-quick  the same with a few batches, as a smoke test
#   make demo       train the Fashion-MNIST MLP and print its test accuracy
#   make examples   run the course examples (XOR, regression)
#   make deps       install the Debian packages the build needs (when missing)
#   make tensorboard-check  TensorBoard's reader on nabla's event files (a
#                   virtual environment with tensorboard and tbparse from PyPI)
#   make onnx-check  ONNX export checked by onnx.checker and ONNX Runtime (a
#                   virtual environment with onnxruntime from PyPI)
#   make onnx-import-check  PyTorch 2.x's own ONNX exports imported (PyTorch 2.x
#                   and onnxscript from PyPI, in the bench's virtual environment)
#   make fuzz       build the libFuzzer targets with clang (build-fuzz/) and run
#                   each for FUZZ_SECONDS (default 60); see docs/fuzzing.md

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= idx csv npy safetensors spec image text onnx
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

DEB_PACKAGES = cmake gcc make pkg-config libopenblas-dev zlib1g-dev libcjson-dev \
               libpng-dev libjpeg62-turbo-dev protobuf-c-compiler libprotobuf-c-dev \
               libonnx-dev wamerican
FUZZ_PACKAGES = clang libclang-rt-14-dev
# optional: mpirun nabla train (docs/scaling.md)
MPI_PACKAGES = libopenmpi-dev openmpi-bin

.PHONY: all build bench bench-quick test test-asan demo examples deps clean fuzz fuzz-build fuzz-deps tune-demo

all: build

deps:
	@sh scripts/install-deps.sh $(DEB_PACKAGES)

# Open MPI, for several processes; the next build finds it
.PHONY: mpi
mpi:
	@sh scripts/install-deps.sh $(MPI_PACKAGES)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

bench: build
	sh bench/compare.sh $(BUILD)

bench-quick: build
	sh bench/compare.sh --quick $(BUILD)

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DNB_SANITIZE=ON $(CMAKE_FLAGS)

test-asan: deps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS) -E '^slow_'

fuzz-deps: deps
	@sh scripts/install-deps.sh $(FUZZ_PACKAGES)

$(BUILD_FUZZ)/CMakeCache.txt: | fuzz-deps
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_FUZZ=ON $(CMAKE_FLAGS)

fuzz-build: fuzz-deps $(BUILD_FUZZ)/CMakeCache.txt
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))

# New inputs found go to build-fuzz/corpus/<target>; tests/corpus/<target> only seeds.
# Crashes are written as build-fuzz/<target>-crash-*.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD_FUZZ)/corpus/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(BUILD_FUZZ)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
	    -dict=fuzz/$$t.dict -artifact_prefix=$(BUILD_FUZZ)/$$t- -print_final_stats=1 \
	    $(BUILD_FUZZ)/corpus/$$t tests/corpus/$$t || exit 1; \
	done


# The main job: train the Fashion-MNIST MLP and report its test accuracy.
demo: build
	@sh scripts/install-deps.sh dataset-fashion-mnist
	@mkdir -p $(BUILD)/demo
	$(BUILD)/nabla train models/fashion_mlp.nn --data fashion-mnist --epochs 20 --batch 128 \
	  --optim adam --seed 0 --out $(BUILD)/demo/fashion_mlp.safetensors \
	  --log $(BUILD)/demo/fashion_mlp.csv --plot $(BUILD)/demo/fashion_mlp.svg
	@echo "curves: $(BUILD)/demo/fashion_mlp.svg  weights: $(BUILD)/demo/fashion_mlp.safetensors"

# Hyperparameter search: ASHA against plain random search on Fashion-MNIST
# (docs/tune.md); about 300 epochs of an MLP, not part of the test suite.
tune-demo: build
	@sh scripts/install-deps.sh dataset-fashion-mnist
	sh scripts/tune-demo.sh $(BUILD)/nabla $(BUILD)/tune-demo

# The course examples: XOR and linear regression.
examples: build
	$(BUILD)/examples/xor
	$(BUILD)/examples/regression

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)

	rm -rf $(BUILD) $(BUILD_ASAN)

# Regenerate the committed reference values (Debian's python3-torch;
# python3-mpmath for the few values float64 cannot hold; the evaluation
# report's from python3-sklearn).
.PHONY: reference
reference:
	@sh scripts/install-deps.sh python3-torch python3-numpy python3-mpmath python3-sklearn
	for s in tests/reference/*.py; do /usr/bin/python3 $$s || exit 1; done

# Weights to and from PyTorch with Python's safetensors reader: a virtual
# environment on top of Debian's python3-torch gets the safetensors package.
PYENV = $(BUILD)/pyenv
.PHONY: interop
interop: build
	@sh scripts/install-deps.sh python3-torch python3-numpy python3-venv dataset-fashion-mnist
	[ -x $(PYENV)/bin/python ] || /usr/bin/python3 -m venv --system-site-packages $(PYENV)
	$(PYENV)/bin/python -c 'import safetensors' 2>/dev/null || $(PYENV)/bin/pip install -q safetensors
	$(PYENV)/bin/python tests/torch_interop.py $(BUILD)
	$(PYENV)/bin/python tests/torch_finetune.py $(BUILD)

# ONNX export checked by onnx.checker and ONNX Runtime (tests/onnx_check.py):
# Debian's python3-onnx, and onnxruntime from PyPI in a virtual environment.
ONNXENV ?= $(BUILD)/venv-onnx
.PHONY: onnx-check
onnx-check: build
	@sh scripts/install-deps.sh python3-onnx python3-numpy python3-venv dataset-fashion-mnist
	[ -x $(ONNXENV)/bin/python ] || /usr/bin/python3 -m venv --system-site-packages $(ONNXENV)
	$(ONNXENV)/bin/python -c 'import onnxruntime' 2>/dev/null || \
	  $(ONNXENV)/bin/pip install -q onnxruntime
	$(ONNXENV)/bin/python tests/onnx_check.py $(BUILD)

# PyTorch 2.x's torch.onnx.export (both exporters; the default one writes its
# own opset and external data) imported (tests/onnx_import_check.py).  PyPI's
# torch is several GB: the virtual environment is the bench's.
TORCH2ENV ?= $(or $(BENCH_VENV),$(HOME)/.cache/nabla-bench-venv)
.PHONY: onnx-import-check
onnx-import-check: build
	@sh scripts/install-deps.sh python3-venv dataset-fashion-mnist
	[ -x $(TORCH2ENV)/bin/python ] || /usr/bin/python3 -m venv $(TORCH2ENV)
	$(TORCH2ENV)/bin/python -c 'import numpy, torch, onnxscript' 2>/dev/null || \
	  $(TORCH2ENV)/bin/pip install -q numpy torch onnxscript
	$(TORCH2ENV)/bin/python tests/onnx_import_check.py $(BUILD)

# TensorBoard's own reader on nabla's event files (tests/tensorboard_check.py):
# a virtual environment with the tensorboard and tbparse packages.
TBENV ?= $(BUILD)/venv-tb
.PHONY: tensorboard-check
tensorboard-check: build
	@sh scripts/install-deps.sh python3-venv
	[ -x $(TBENV)/bin/python ] || /usr/bin/python3 -m venv $(TBENV)
	$(TBENV)/bin/python -c 'import tensorboard, tbparse' 2>/dev/null || \
	  $(TBENV)/bin/pip install -q tensorboard tbparse
	NB_TB_PYTHON=$(TBENV)/bin/python $(TBENV)/bin/python tests/tensorboard_check.py $(BUILD)

# The word models (models/words_*.nn) against their PyTorch twins on Debian's
# word list: the six validation losses of docs/sequences.md (a few minutes).
WORDS_DIR ?= $(BUILD)/words
.PHONY: words-compare
words-compare: build
	@sh scripts/install-deps.sh python3-torch wamerican
	/usr/bin/python3 tests/words_twins.py $(BUILD) $(WORDS_DIR)
