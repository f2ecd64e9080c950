#!/bin/sh
# run-report-browser.sh - the HTML report in a real browser: run a small eval (stories260K as
# upstream and aligner), write its report, load it in headless Chromium, check the page parsed
# whole (summary table, every record, the word diff, escaped text intact) and logged nothing on
# the console (the page's Content-Security-Policy turns any attempt to load something into a
# console message), and save a screenshot to build/test-output/report.png. Then the same with judged
# results (salign judge with stories260K as the judge; report --judged): build/test-output/report-judged.png.
# Installs Debian's chromium with apt-get when missing and running as root.
# Ends with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
out=build/test-output
mkdir -p "$out"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() {
    [ -n "$profile" ] && rm -rf "$profile"
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit $?
}

browser=""
for b in chromium chromium-browser; do
    command -v $b >/dev/null 2>&1 && { browser=$b; break; }
done
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run-report-browser: installing chromium" >&2
    # another apt-get may be running (tools/deps.sh, a parallel job): wait for its lock
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >&2
    command -v chromium >/dev/null 2>&1 && browser=chromium
fi
if [ -z "$browser" ]; then
    echo "run-report-browser: chromium is missing; install it with: sudo apt-get install -y chromium"
    bad "chromium available"
    finish
fi
if [ ! -x bin/salign ]; then
    echo "run-report-browser: bin/salign is missing (run make first)"
    bad "bin/salign built"
    finish
fi

# 1. a small eval and its report
res=$out/report-results.jsonl html=$out/report.html
if bin/salign eval --upstream weights/stories260K.salm --aligner weights/stories260K.salm --aligner-template plain \
    --temp 0 --max-sentences 3 --max-tokens 60 -t 1 --no-progress --no-resume \
    --in tests/data/eval-small.jsonl --out "$res" >"$out/report-eval.log" 2>&1 &&
    bin/salign report "$res" -o "$html" >>"$out/report-eval.log" 2>&1; then
    ok "eval and report"
else
    cat "$out/report-eval.log"
    bad "eval and report"
    finish
fi

# 2. load it: the DOM after parsing, and the console
profile=$(mktemp -d)
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir=$profile"
url="file://$(pwd)/$html"
dom=$out/report-dom.html log=$out/report-chromium.log
# shellcheck disable=SC2086
if timeout 120 $browser $flags --enable-logging=stderr --v=0 --dump-dom "$url" >"$dom" 2>"$log" &&
    grep -q '</html>' "$dom"; then
    ok "page loads"
else
    tail -n 20 "$log"
    bad "page loads"
    finish
fi
if grep -q 'CONSOLE' "$log"; then
    grep 'CONSOLE' "$log" | head -n 5
    bad "no console messages (errors, blocked loads)"
else
    ok "no console messages (errors, blocked loads)"
fi
if grep -q '<table class="summary" id="summary">' "$dom" &&
    [ "$(sed -n '/<table class="summary" id="summary">/,/<\/table>/p' "$dom" | grep -o '<td><span class="badge m-[a-z]*">' | wc -l)" = 3 ] &&
    [ "$(sed -n '/<table class="summary" id="stops">/,/<\/table>/p' "$dom" | grep -o '<td><span class="badge m-[a-z]*">' | wc -l)" = 3 ]; then
    ok "summary and stop-reason tables with a row per mode"
else
    bad "summary and stop-reason tables with a row per mode"
fi
if grep -q '<del>' "$dom" && grep -q '<ins>' "$dom"; then
    ok "word diff (<del>/<ins>)"
else
    bad "word diff (<del>/<ins>)"
fi
# the record whose question is HTML must come through as text, and every record must be there
if grep -q 'The little bird &lt;b&gt;sang&lt;/b&gt; &amp; "flew" &lt;/td&gt;' "$dom" && ! grep -q '<b>sang' "$dom" &&
    [ "$(grep -o '<section class="rec"' "$dom" | wc -l)" = 6 ] && grep -q '<svg class="chart"' "$dom"; then
    ok "escaped text, all 6 records and the chart parsed"
else
    bad "escaped text, all 6 records and the chart parsed"
fi

# 3. with judged results (salign judge, stories260K as the judge: generative with --swap for the
#    reasoning text, plus math lines and the math judge): the win/tie/loss, math and math judge tables,
#    and per record the verdicts with the judge's text in collapsible <details>
jd=$out/report-judged.jsonl jhtml=$out/report-judged.html jdom=$out/report-judged-dom.html
if bin/salign judge --judge weights/stories260K.salm --in "$res" --out "$jd" --tasks safety,utility,math --math-judge --swap \
    -c 2048 --max-tokens 24 -t 1 --no-progress --no-resume >"$out/report-judge.log" 2>&1 &&
    bin/salign report "$res" --judged "$jd" -o "$jhtml" >>"$out/report-judge.log" 2>&1; then
    ok "judge and report --judged"
else
    cat "$out/report-judge.log"
    bad "judge and report --judged"
fi
jurl="file://$(pwd)/$jhtml"
# shellcheck disable=SC2086
if timeout 120 $browser $flags --enable-logging=stderr --v=0 --dump-dom "$jurl" >"$jdom" 2>"$log.judged" &&
    grep -q '</html>' "$jdom" && ! grep -q 'CONSOLE' "$log.judged"; then
    ok "judged page loads without console messages"
else
    grep 'CONSOLE' "$log.judged" | head -n 5
    bad "judged page loads without console messages"
fi
# 4 rows (2 tasks x 2 pairs) in the judged table, 3 modes in the math and math judge tables, a judged
# block in each of the 6 records, 6 x 2 x 2 x 2 = 48 pairwise reasoning texts (none failed here) + 2 x 3
# math judge texts (the two records with a solution, q2's "solution" and the third's GSM8K "answer")
rows=$(sed -n '/<table class="summary" id="judged">/,/<\/table>/p' "$jdom" | grep -c '^<tr><td>')
mrows=$(sed -n '/<table class="summary" id="math">/,/<\/table>/p' "$jdom" | grep -c '^<tr><td>')
mjrows=$(sed -n '/<table class="summary" id="math-judge">/,/<\/table>/p' "$jdom" | grep -c '^<tr><td>')
if [ "$rows" = 4 ] && [ "$mrows" = 3 ] && [ "$mjrows" = 3 ] &&
    [ "$(grep -o '<details class="judged" open="">' "$jdom" | wc -l)" = 6 ] &&
    [ "$(grep -o '<summary>the judge.s reasoning</summary><div class="jt">' "$jdom" | wc -l)" = 54 ] &&
    grep -q 'v-unparsed' "$jdom"; then
    ok "judged tables (4 pairs, 3 math modes, 3 math judge modes) and 54 collapsible reasoning texts in 6 records"
else
    echo "judged rows $rows, math rows $mrows, math judge rows $mjrows"
    bad "judged tables (4 pairs, 3 math modes, 3 math judge modes) and 54 collapsible reasoning texts in 6 records"
fi
rm -f "$out/report-judged.png"
# shellcheck disable=SC2086
timeout 120 $browser $flags --hide-scrollbars --window-size=1280,1700 --screenshot="$(pwd)/$out/report-judged.png" \
    "$jurl" >>"$log.judged" 2>&1
if [ -s "$out/report-judged.png" ] && [ "$(wc -c <"$out/report-judged.png")" -gt 20000 ]; then
    ok "screenshot $out/report-judged.png"
else
    bad "screenshot $out/report-judged.png"
fi

# 5. the screenshot
rm -f "$out/report.png"
# shellcheck disable=SC2086
timeout 120 $browser $flags --hide-scrollbars --window-size=1280,1700 --screenshot="$(pwd)/$out/report.png" "$url" \
    >>"$log" 2>&1
if [ -s "$out/report.png" ] && [ "$(head -c 4 "$out/report.png" | tail -c 3)" = "PNG" ] &&
    [ "$(wc -c <"$out/report.png")" -gt 20000 ]; then
    ok "screenshot $out/report.png"
else
    bad "screenshot $out/report.png"
fi
finish
