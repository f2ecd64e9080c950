#!/bin/sh
# run-train-smoke.sh - CI smoke test of the demo aligner's recipe (tools/train/README.md): data generation,
# the splitter against src/sentence.c, the teacher, tokenization, the packed forward pass, a few training
# steps of a tiny model, export -> salign-quantize -> salign's logits = PyTorch's, and the shipped
# weights/demo-aligner.salm against the teacher through the engine's code path. Never retrains the
# shipped model; everything is written to a temporary folder. About 20 s.
# Needs bin/ and build/libsalign.a (make all) and Debian's python3-torch (installed here when root;
# a failure of this part otherwise: tests/oracle.sh). Ends with "N passed, N failed[, N skipped]".
cd "$(dirname "$0")/.." || exit 1
. tests/oracle.sh
if ! py=$(sh tools/train/deps.sh train 2>/tmp/run-train-smoke.$$); then
    cat /tmp/run-train-smoke.$$
    rm -f /tmp/run-train-smoke.$$
    missing_oracle run-train-smoke "no PyTorch (python3-torch)"
fi
rm -f /tmp/run-train-smoke.$$
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE "$py" tools/train/smoke.py
