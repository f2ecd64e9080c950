#!/bin/sh
# demo.sh - what `make demo` runs. Until the trained demo aligner lands (issue: demo aligner),
# this converts the bundled stories260K model and generates a story, streamed token by token.
set -e
cd "$(dirname "$0")/.."
model=weights/stories260K.salm
if [ ! -f "$model" ]; then
    echo "salign demo: $model is missing" >&2
    exit 1
fi
echo "== salign generate: stories260K (Karpathy's TinyStories model, MIT), greedy, 200 tokens" >&2
bin/salign generate -m "$model" -p "Once upon a time" -n 200 --temp 0
echo
echo "== the same, sampled (temperature 0.8, top-k 40, top-p 0.95, seed 42)" >&2
bin/salign generate -m "$model" -p "Once upon a time" -n 200 --seed 42
echo
