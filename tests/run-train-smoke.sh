#!/bin/sh
# run-train-smoke.sh - CI smoke test of the demo aligner's recipe (tools/train/README.md): data generation,
# the splitter against src/sentence.c, the teacher, tokenization, the packed forward pass, a few training
# steps of a tiny model, export -> salign-quantize -> salign's logits = PyTorch's, and the shipped
# weights/demo-aligner.salm against the teacher through the engine's code path. Never retrains the
# shipped model; everything is written to a temporary folder. About 20 s.
# Needs bin/ and build/libsalign.a (make all) and Debian's python3-torch (installed here when root;
# skipped with a message otherwise). Ends with "N passed, N failed[, N skipped]".
cd "$(dirname "$0")/.." || exit 1
if ! py=$(sh tools/train/deps.sh train 2>/tmp/run-train-smoke.$$); then
    cat /tmp/run-train-smoke.$$
    rm -f /tmp/run-train-smoke.$$
    echo "run-train-smoke: skipped (no PyTorch)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
rm -f /tmp/run-train-smoke.$$
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE "$py" tools/train/smoke.py
