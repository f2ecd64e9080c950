#!/bin/sh
# demo.sh - what `make demo` runs: Stream Aligner live on the two bundled models.
#   upstream: weights/stories260K.salm   Karpathy's TinyStories model (260K parameters, MIT)
#   aligner:  weights/demo-aligner.salm  trained here to make stories kind and drop repeated sentences
#             (tools/train/README.md; its accuracy and the paper's table in weights/DEMO.md)
# The upstream writes one sentence; the aligner rewrites it given the opening and the corrected story
# so far; the rewrite replaces the sentence and the upstream continues from it. --show-original shows
# each upstream sentence (on a terminal: dimmed, on its own line) before its correction.
set -e
cd "$(dirname "$0")/.."
up=weights/stories260K.salm
al=weights/demo-aligner.salm
if [ ! -f "$up" ]; then
    echo "salign demo: $up is missing" >&2
    exit 1
fi
if [ ! -f "$al" ]; then
    # the trained demo aligner is not in this checkout yet: show the upstream alone
    echo "salign demo: $al is not here yet (see tools/train/README.md); showing stories260K alone" >&2
    bin/salign generate -m "$up" -p "Once upon a time" -n 200 --temp 0
    echo
    exit 0
fi
# A held-out opening (never trained on) and a seed whose story has unkind sentences to rewrite.
opening="${DEMO_OPENING:-Jill loved to draw pictures.}"
seed="${DEMO_SEED:-1}"
# upstream sampled as in the training data; aligner greedy
flags="--upstream-temp 0.8 --upstream-top-k 40 --upstream-top-p 0.95 --upstream-frequency-penalty 0
       --aligner-temp 0 --aligner-frequency-penalty 0 --max-tokens 200 --seed $seed"

echo "== salign align: stories260K writes, the demo aligner corrects each sentence live" >&2
echo "   opening: $opening" >&2
# On a terminal each upstream sentence is shown dimmed above its correction; through a pipe (a log) the
# originals would interleave with the answer on two streams, so only the answer is streamed there (the
# trace below lists every original and its correction either way).
show=""
[ -t 1 ] && show=--show-original
# shellcheck disable=SC2086
bin/salign align --upstream "$up" --aligner "$al" -p "$opening" $show $flags
# salign ends the answer's line itself on a terminal (or when stdout and stderr share a file);
# a stdout of its own keeps the model's bytes, so end the line here before the trace follows
[ -t 1 ] || echo

echo "== the same run's --json trace: per sentence, the original and its correction; then the timings" >&2
# shellcheck disable=SC2086
json=$(bin/salign align --upstream "$up" --aligner "$al" -p "$opening" $flags --json 2>/dev/null)
if command -v python3 >/dev/null 2>&1; then
    printf '%s\n' "$json" | python3 -c '
import json, sys
t = json.load(sys.stdin)
for i, s in enumerate(t["sentences"]):
    o, c = s["original"], s["correction"]
    mark = "kept   " if o == c else ("DELETED" if not c else "REWROTE")
    print("%2d %s %s" % (i + 1, mark, json.dumps(o)))
    if o != c and c:
        print("           -> %s" % json.dumps(c))
print("first visible token after %.1f ms, total %.1f ms, %d sentences, stop: %s" % (
    t["first_visible_ms"], t["total_ms"], len(t["sentences"]), t["stop"]))
print("token evaluations: %d (the reference schedule would spend %d)" % (
    t["token_evaluations"], t["reference_token_evaluations"]))'
else
    printf '%s\n' "$json"
fi
