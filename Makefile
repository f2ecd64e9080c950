# salign - build, test, demo, bench.
#   make            bin/salign, bin/salign-quantize, bin/salign-synth (installs missing Debian packages when root)
#   make test       everything in tests/ (what .ci/run and the README run)
#   make demo       the bundled demo
#   make test-fresh make demo + the fast tests in a fresh Debian root (debootstrap; root; cached base)
#   make bench      speed against llama.cpp, same machine, same invocation
#   make fuzz       every libFuzzer target to 1,000,000 executions, counts in tests/fuzz/RESULTS.md
# Variables: CC, ARCH (x86_64 | aarch64, from $(CC) -dumpmachine), SAN=1 (ASan+UBSan build in build-san/)

CC      ?= gcc
MACHINE := $(shell $(CC) -dumpmachine)
ifneq (,$(findstring aarch64,$(MACHINE)))
  ARCH := aarch64
else
  ARCH := x86_64
endif

BUILD   ?= build
BIN     ?= bin
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -fopenmp -fno-math-errno
LDLIBS  += -fopenmp -lz -lm -lcjson -lutf8proc -lmicrohttpd -ledit -lpthread
ifeq ($(SAN),1)
  BUILD  := build-san
  BIN    := bin-san
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS += -fsanitize=address,undefined
endif
ifneq ($(NOBLAS),1)
  # BLAS_CFLAGS (OpenBLAS's own cblas.h folder) comes from $(DEPS_OK), written by tools/deps.sh
  CFLAGS += -DSALIGN_BLAS $(BLAS_CFLAGS)
  BLAS_LIB := -lopenblas
  LDLIBS += $(BLAS_LIB)
endif

SIMD_SRC := simd/scalar.c simd/dispatch.c simd/kquant_x8.c simd/peak.c
ifeq ($(ARCH),x86_64)
  SIMD_SRC += simd/avx2.c simd/avx512.c
endif
ifeq ($(ARCH),aarch64)
  SIMD_SRC += simd/neon.c
endif

# Three layers of objects, each calling only the one below: the runtime (src/, simd/: libsalign.a,
# which also opens GGUFs: the GGUF importer and the in-memory conversion are in src/), the
# converter's other importers (tools/convert/: libsalign-convert.a, llama2.c and Hugging Face,
# behind salign-quantize) and the test-model synthesis of salign-synth (tools/synth/).
LIB_SRC   := $(filter-out src/cli.c,$(wildcard src/*.c)) $(SIMD_SRC)
CONV_SRC  := $(filter-out tools/convert/quantize_main.c,$(wildcard tools/convert/*.c))
SYNTH_SRC := tools/synth/synth.c tools/synth/gguf_write.c
TEST_SRC  := $(wildcard tests/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CONV_OBJ  := $(CONV_SRC:%.c=$(BUILD)/%.o)
SYNTH_OBJ := $(SYNTH_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
# tools/deps.sh build checks (compile + link) every library the build uses, installs what is missing,
# and writes the flags it found here; make reads it before building anything (and re-reads itself
# once it has been written). Cross builds (make arm-kernel-tests) pass DEPS_OK= and need none of it.
DEPS_OK   := $(BUILD)/deps.mk

all: $(BIN)/salign $(BIN)/salign-quantize $(BIN)/salign-synth $(BIN)/salign-tests

# Per-ISA flags apply to that file only: the rest of the binary runs on any CPU of the architecture.
$(BUILD)/simd/avx2.o:   EXTRA := -mavx2 -mfma -mf16c
$(BUILD)/simd/avx512.o: EXTRA := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni
# neon.c is built for plain ARMv8.0 so its baseline table runs on every aarch64 CPU; its SDOT
# functions carry their own target("arch=armv8.2-a+dotprod") and run only when hwcaps say so.
$(BUILD)/simd/neon.o:   EXTRA := -march=armv8-a

# the page `salign serve` serves at /, compiled into the binary (tools/embed_page.sh)
src/serve_assets.c: web/page.html web/page.css web/page.js tools/embed_page.sh
	sh tools/embed_page.sh

$(DEPS_OK): tools/deps.sh
	@mkdir -p $(@D)
	@sh tools/deps.sh build > $@.tmp && mv $@.tmp $@
ifneq ($(DEPS_OK),)
ifeq ($(filter-out clean test-fresh,$(or $(MAKECMDGOALS),all)),)
else
include $(DEPS_OK)
endif
endif

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(EXTRA) -MMD -MP -c $< -o $@

# The AVX-512 table once more, emulated: simd/avx512.c against SIMDe's portable AVX-512 intrinsics
# (libsimde-dev, installed by tools/deps.sh test) as the table "avx512_emu", linked into the test
# binaries only, so the AVX-512 kernels are tested on CPUs without AVX-512 (simd/avx512.c). Only
# AVX2-level flags: the object must not contain a single AVX-512 instruction. Without the header
# the test binaries are built without it and the tests that need it say so (skip lines).
SIMDE_HDR := $(wildcard /usr/include/simde/x86/avx512.h)
ifeq ($(ARCH)$(if $(SIMDE_HDR),yes),x86_64yes)
  EMU_OBJ := $(BUILD)/simd/avx512_emu.o
endif
$(BUILD)/simd/avx512_emu.o: simd/avx512.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -mavx2 -mfma -mf16c -Wno-psabi -DSALIGN_SIMDE -MMD -MP -c $< -o $@

$(BUILD)/libsalign.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libsalign-convert.a: $(CONV_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN)/salign: $(BUILD)/src/cli.o $(BUILD)/libsalign.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/salign-quantize: $(BUILD)/tools/convert/quantize_main.o $(BUILD)/libsalign-convert.a $(BUILD)/libsalign.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libsalign-convert.a $(BUILD)/libsalign.a $(LDLIBS)

# random-weight models of any architecture and shape, as HF directories and GGUFs (tests, benchmarks)
$(BIN)/salign-synth: $(BUILD)/tools/synth/synth_main.o $(SYNTH_OBJ) $(BUILD)/libsalign-convert.a $(BUILD)/libsalign.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(SYNTH_OBJ) $(BUILD)/libsalign-convert.a $(BUILD)/libsalign.a $(LDLIBS)

# tools/train's C helpers (correct.c, logits.c): linked exactly as bin/salign is, so they see the
# same BLAS and libraries; the Python scripts build them with `make build/train-bin/NAME`.
$(BUILD)/train-bin/%: $(BUILD)/tools/train/%.o $(BUILD)/libsalign.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# tools/bench's kernel timer (kernbench.c: one weight type's kernels, table against table)
$(BUILD)/bench-bin/%: $(BUILD)/tools/bench/%.o $(BUILD)/libsalign.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# --whole-archive: tests register themselves from constructors, and library objects are all needed.
$(BIN)/salign-tests: $(TEST_OBJ) $(EMU_OBJ) $(BUILD)/libsalign-convert.a $(BUILD)/libsalign.a
	@mkdir -p $(@D)
	@[ "$(ARCH)" != x86_64 ] || [ -n "$(EMU_OBJ)" ] || echo "note: libsimde-dev is not installed: $@ is built without the emulated AVX-512 kernels (their tests will be skipped); make test installs it"
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(EMU_OBJ) -Wl,--whole-archive $(BUILD)/libsalign-convert.a $(BUILD)/libsalign.a -Wl,--no-whole-archive $(LDLIBS)

# deps first: the test binary links the emulated AVX-512 kernels when libsimde-dev is there
test:
	@sh tools/deps.sh test
	@$(MAKE) --no-print-directory all
	@sh tests/run.sh

demo: all
	@sh tools/demo.sh

# make demo and the fast tests in a fresh Debian bookworm root (debootstrap, cached in
# ~/.cache/salign-fresh; needs root): tests/fresh-machine.sh
test-fresh:
	@sh tests/fresh-machine.sh

bench: all
	@sh tools/bench/bench.sh

clean:
	rm -rf build build-san bin bin-san build-arm bin-arm build-fuzz

.PHONY: all test test-fresh demo bench clean

# ---- kernel tests alone, and on aarch64 under qemu ----
# salign-kernel-tests links only the kernel tables, the dtype code and the kernel tests: no zlib,
# cJSON or utf8proc, and with NOBLAS=1 (as make test-arm builds it) no BLAS, so it cross-builds with
# nothing but the cross compiler (no arm64 libraries needed).
KTEST_SRC := tests/test_main.c tests/test_kernels.c src/common.c src/dtype.c src/quants.c src/parallel.c $(SIMD_SRC)
$(BIN)/salign-kernel-tests: $(KTEST_SRC:%.c=$(BUILD)/%.o) $(EMU_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -fopenmp -lm $(BLAS_LIB)

# make test-arm: build for aarch64 in build-arm/ and run the kernel tests under qemu-user twice:
# -cpu max (has dotprod: tests neon and neon_dotprod) and -cpu cortex-a72 (ARMv8.0, no dotprod:
# the baseline table must be picked and must not use a newer instruction). DEPS_OK is emptied
# because tools/deps.sh checks host packages; tests/run-arm.sh installs the cross tools.
ARM_CC   ?= aarch64-linux-gnu-gcc
ARM_QEMU ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
arm-kernel-tests:
	$(MAKE) CC=$(ARM_CC) NOBLAS=1 BUILD=build-arm BIN=bin-arm DEPS_OK= bin-arm/salign-kernel-tests
test-arm: arm-kernel-tests
	$(ARM_QEMU) -cpu max bin-arm/salign-kernel-tests kernels
	$(ARM_QEMU) -cpu cortex-a72 bin-arm/salign-kernel-tests kernels

.PHONY: arm-kernel-tests test-arm
-include $(LIB_OBJ:.o=.d) $(CONV_OBJ:.o=.d) $(SYNTH_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(EMU_OBJ:.o=.d) $(BUILD)/src/cli.d $(BUILD)/tools/convert/quantize_main.d $(BUILD)/tools/synth/synth_main.d

# ---- fuzzing: libFuzzer targets tests/fuzz/fuzz_*.c (tests/fuzz/README.md) ----
# make fuzz        build, then run every target for FUZZ_RUNS executions (default 1,000,000; at
#                  most FUZZ_MAX_TIME seconds each, default 3600) once per libFuzzer seed of
#                  FUZZ_SEEDS (default "1"), each from a clean corpus, one after another, and write
#                  the counts and coverage to tests/fuzz/RESULTS.md. Installs clang-14, libfuzzer-14-dev and
#                  libomp-14-dev with apt-get when missing and running as root.
# make fuzz-build  build the targets into build-fuzz/ (tests/run-fuzz.sh runs each briefly in CI)
# The library is compiled once more with clang, coverage instrumentation and ASan+UBSan.
FUZZ_CC      ?= clang-14
FUZZ_BUILD   := build-fuzz
FUZZ_RUNS    ?= 1000000
FUZZ_MAX_TIME ?= 3600
FUZZ_SEEDS   ?= 1
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer -fopenmp -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -DSALIGN_BLAS $(BLAS_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(CONV_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/simd/avx2.o:   EXTRA := -mavx2 -mfma -mf16c
$(FUZZ_BUILD)/simd/avx512.o: EXTRA := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni
$(FUZZ_BUILD)/simd/neon.o:   EXTRA := -march=armv8-a

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(EXTRA) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libsalign.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libsalign.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ -lz -lm -lcjson -lutf8proc -lopenblas

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

fuzz:
	@FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_MAX_TIME=$(FUZZ_MAX_TIME) FUZZ_SEEDS="$(FUZZ_SEEDS)" FUZZ_CC=$(FUZZ_CC) sh tests/fuzz/run.sh

.PHONY: fuzz fuzz-build
.PRECIOUS: $(FUZZ_BUILD)/%.o
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/%.d)

# ---- the demo aligner: data, training, evaluation (tools/train/README.md) ----
# make demo-data   stories260K stories from tools/train/openings.py, split and corrected by the
#                  teacher: $(TRAIN_DIR)/*.jsonl (a few minutes)
# make demo-train  train it (PyTorch on the CPU, seeded), export, convert to weights/demo-aligner.salm
#                  and check salign's logits against PyTorch's; installs python3-torch when root
# make demo-eval   held-out agreement with the teacher and the paper's table -> weights/DEMO.md
# `make demo` needs none of these: the trained weights/demo-aligner.salm is committed.
TRAIN_DIR ?= build/train

demo-data: all
	@py=$$(sh tools/train/deps.sh data) && $$py tools/train/gen_data.py --out $(TRAIN_DIR)

demo-train: demo-data
	@py=$$(sh tools/train/deps.sh train) && \
	  $$py tools/train/train.py --data $(TRAIN_DIR) --out $(TRAIN_DIR)/aligner.pt && \
	  $$py tools/train/export.py --ckpt $(TRAIN_DIR)/aligner.pt --out weights/demo-aligner.salm \
	    --records $(TRAIN_DIR)/records-test.jsonl

demo-eval: all
	@py=$$(sh tools/train/deps.sh data) && \
	  { [ -f $(TRAIN_DIR)/records-test-repeats.jsonl ] || $$py tools/train/gen_data.py --out $(TRAIN_DIR) --splits test; } && \
	  $$py tools/train/evaluate.py --data $(TRAIN_DIR) --aligner weights/demo-aligner.salm --out weights/DEMO.md

.PHONY: demo-data demo-train demo-eval
