#!/bin/sh
# run-report-browser.sh - the HTML report in a real browser: run a small eval (stories260K as
# upstream and aligner), write its report, load it in headless Chromium, check the page parsed
# whole (summary table, every record, the word diff, escaped text intact) and logged nothing on
# the console (the page's Content-Security-Policy turns any attempt to load something into a
# console message), and save a screenshot to build/test-output/report.png.
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
    [ "$(grep -o '<td><span class="badge m-[a-z]*">' "$dom" | wc -l)" = 3 ]; then
    ok "summary table with a row per mode"
else
    bad "summary table with a row per mode"
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

# 3. the screenshot
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
