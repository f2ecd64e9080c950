#!/bin/sh
# run-math-oracle.sh - salign math-check against a SymPy-based oracle (tests/oracles/math_oracle.py,
# Debian python3-sympy) on 380 generated (answer, solution) pairs (tests/oracles/math_corpus.py,
# every normalisation and value form, half equal by construction) and on the hand-written edge cases
# of tests/data/math-edge.jsonl. Every output field must agree with the oracle's (extracted and
# normalised texts, and the verdict), and the verdict with the generator's / the table's truth.
# Installs python3-sympy with apt-get when missing and running as root; fails (never skips) otherwise.
# Ends with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
out=build/test-output
mkdir -p "$out"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

py=/usr/bin/python3 # the Debian module is not visible to other Pythons
if ! $py -c 'import sympy' 2>/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run-math-oracle: installing python3-sympy" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-sympy >&2
fi
if ! $py -c 'import sympy' 2>/dev/null; then
    echo "run-math-oracle: SymPy is missing; install it with: sudo apt-get install -y python3-sympy"
    bad "python3-sympy available"
    finish
fi
if [ ! -x bin/salign ]; then
    echo "run-math-oracle: bin/salign is missing (run make first)"
    bad "bin/salign built"
    finish
fi

# compare.py-like check, inline: C output, oracle output, inputs with "expect" (and for edge cases
# "expect_answer_extracted"); prints the first disagreements and a summary line
check() { # inputs c-output oracle-output label
    $py - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
inp, c, o, label = sys.argv[1:]
rows = [json.loads(l) for l in open(inp, encoding="utf-8") if l.strip()]
C = [json.loads(l) for l in open(c, encoding="utf-8") if l.strip()]
O = [json.loads(l) for l in open(o, encoding="utf-8") if l.strip()]
if not (len(rows) == len(C) == len(O)):
    print("  line counts differ: %d inputs, %d from salign, %d from the oracle" % (len(rows), len(C), len(O)))
    sys.exit(1)
bad = 0
for k, (r, x, y) in enumerate(zip(rows, C, O)):
    why = []
    if x != y:
        why.append("salign %s != oracle %s" % (json.dumps(x, ensure_ascii=False), json.dumps(y, ensure_ascii=False)))
    if x.get("correct") != r["expect"]:
        why.append("correct should be %s" % r["expect"])
    if "expect_answer_extracted" in r and x.get("answer_extracted") != r["expect_answer_extracted"]:
        why.append("answer_extracted should be %r" % r["expect_answer_extracted"])
    if why:
        bad += 1
        if bad <= 10:
            print("  line %d (%s): %s" % (k + 1, r.get("kind") or r.get("name"), "; ".join(why)))
kinds = sorted({r.get("kind") for r in rows if r.get("kind")})
print("  %s: %d pairs, %d equal by construction, %d disagreements%s" % (label, len(rows),
      sum(r["expect"] for r in rows), bad, (", kinds: " + " ".join(kinds)) if kinds else ""))
sys.exit(1 if bad else 0)
PY
}

corpus=$out/math-corpus.jsonl
$py tests/oracles/math_corpus.py 1 380 >"$corpus"
n=$(wc -l <"$corpus")
kinds=$($py -c 'import json,sys; print(len({json.loads(l)["kind"] for l in open(sys.argv[1])}))' "$corpus")
[ "$n" -ge 200 ] && [ "$kinds" = 19 ] && ok "corpus: $n pairs over all 19 kinds" || bad "corpus: $n pairs, $kinds kinds"

for set in corpus edge; do
    if [ $set = corpus ]; then inp=$corpus; else inp=tests/data/math-edge.jsonl; fi
    if bin/salign math-check <"$inp" >"$out/math-$set-salign.jsonl" 2>"$out/math-$set.err" &&
        $py tests/oracles/math_oracle.py <"$inp" >"$out/math-$set-oracle.jsonl" &&
        check "$inp" "$out/math-$set-salign.jsonl" "$out/math-$set-oracle.jsonl" $set; then
        ok "math-check agrees with the SymPy oracle and the expected verdicts ($set)"
    else
        cat "$out/math-$set.err"
        bad "math-check agrees with the SymPy oracle and the expected verdicts ($set)"
    fi
done

# the oracle must be able to disagree: a deliberately wrong salign output is caught
sed 's/"correct":true/"correct":false/' "$out/math-edge-salign.jsonl" >"$out/math-edge-broken.jsonl"
if check tests/data/math-edge.jsonl "$out/math-edge-broken.jsonl" "$out/math-edge-oracle.jsonl" broken >/dev/null; then
    bad "a wrong verdict is detected"
else
    ok "a wrong verdict is detected"
fi
finish
