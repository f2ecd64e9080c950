#!/bin/sh
# run-serve.sh - `salign serve` on the bundled models (stories260K upstream, the demo aligner):
#   - the real `openai` npm client (installed into $SALIGN_ORACLE_DIR, default ~/.cache/salign-oracles)
#     streams a chat completion whose concatenated deltas equal `salign align`'s greedy answer, in
#     each mode; the non-streamed answer too; usage counts equal `salign tokenize`'s;
#   - curl/socket level: SSE framing and [DONE], /health while loading and after, /v1/models, auth,
#     400/404/405/413/415, 503 with Retry-After when the queue is full, a client that disconnects
#     mid-stream (its run is cancelled, the next request is served), a client sending one byte a
#     second (timed out, others served meanwhile), stop strings, /v1/completions, SIGTERM exits 0;
#   - a conversation's second request evaluates only the new turn (the trace's counts);
#   - the page at / in headless Chromium (playwright-core): a question, its streamed answer and the
#     original/correction pairs; screenshot in build/test-output/serve-page.png;
#   - 300 requests, 4 at a time: all answered, memory stable.
# SALIGN_BIN_DIR=bin-san runs it all against the ASan build. Ends with "N passed, N failed, N skipped".
cd "$(dirname "$0")/.." || exit 1
BIN=${SALIGN_BIN_DIR:-bin}
. tests/oracle.sh
CACHE=${SALIGN_ORACLE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salign-oracles}
OUT=build/test-output
TMP=$(mktemp -d "${TMPDIR:-/tmp}/salign-serve.XXXXXX")
mkdir -p "$OUT"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
UP=weights/stories260K.salm AL=weights/demo-aligner.salm
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { if [ "$2" = 0 ]; then ok "$1"; else bad "$1"; fi; }
servers=""
cleanup() {
    for p in $servers; do kill "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
finish() {
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" = 0 ] && [ "$skip" = 0 ]
    exit $?
}

if [ ! -x "$BIN/salign" ]; then
    echo "$BIN/salign is missing: run make first"
    bad "$BIN/salign built"
    finish
fi

# start NAME [flags]: a server on a free port; sets $port, $spid, $slog
start() {
    name=$1
    shift
    slog=$TMP/$name.log
    "$BIN/salign" serve --upstream $UP --port 0 -t 1 "$@" >"$slog" 2>&1 &
    spid=$!
    servers="$servers $spid"
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$slog")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$slog"; return 1; }
}
wait_ready() { # until /health says ok
    for _ in $(seq 1 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
stop() { # SIGTERM; the exit status (under ASan, a report in the server's log fails it too)
    kill -TERM "$spid" 2>/dev/null
    wait "$spid"
    st=$?
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' "$slog"; then
        grep -E 'ERROR: |runtime error:|SUMMARY: ' "$slog" | head -n 5
        return 99
    fi
    return $st
}
post() { # PATH BODY [curl flags]: prints "STATUS BODY"
    p=$1 b=$2
    shift 2
    curl -s -o "$TMP/body" -w '%{http_code}' "http://127.0.0.1:$port$p" -H 'Content-Type: application/json' --data-binary "$b" "$@"
    printf ' '
    cat "$TMP/body"
}
chat() { # JSON fields after messages
    printf '{"messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2"
}
Q="Lily had a red ball."

# ---- 1. loading, then ready; models; page headers ----
SALIGN_SERVE_TEST_LOAD_MS=1500 start load --aligner $AL -c 4096 || { bad "server starts"; finish; }
r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/health")
[ "$r" = '{"status":"loading"} 503' ]
check "/health is 503 loading while the models load ($r)" $?
r=$(post /v1/chat/completions "$(chat "$Q")")
case "$r" in 503*'"code":"loading"'*) ok "a completion while loading is a 503" ;; *) bad "a completion while loading is a 503 ($r)" ;; esac
wait_ready
r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/health")
check "/health is 200 ok once loaded ($r)" "$([ "$r" = '{"status":"ok"} 200' ] && echo 0 || echo 1)"
r=$(curl -s "http://127.0.0.1:$port/v1/models")
echo "$r" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); m=d["data"][0]
assert d["object"]=="list" and m["object"]=="model"
assert m["salign"]["upstream"]=="stories260K.salm" and m["salign"]["aligner"]=="demo-aligner.salm", m' 2>"$TMP/err"
check "/v1/models lists the served pair" $?
h=$(curl -s -D - -o "$TMP/page.html" "http://127.0.0.1:$port/")
case "$h" in *"Content-Security-Policy: default-src 'none'; script-src 'sha256-"*) ok "/ is served with a CSP that forbids loads" ;;
    *) bad "/ is served with a CSP that forbids loads" ;; esac
if grep -Eq '(src|href)=' "$TMP/page.html"; then bad "the page loads nothing (no src/href)"; else ok "the page loads nothing (no src/href)"; fi
r=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions")
check "GET on a completion endpoint is 405" "$([ "$r" = 405 ] && echo 0 || echo 1)"
r=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/etc/passwd")
check "no file serving: other paths are 404" "$([ "$r" = 404 ] && echo 0 || echo 1)"
r=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example' "http://127.0.0.1:$port/health")
check "a foreign Host header is refused on loopback (DNS rebinding): 403" "$([ "$r" = 403 ] && echo 0 || echo 1)"

# ---- 2. the openai client equals salign align, in every mode ----
have_node=1
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2 || have_node=0
    else
        echo "missing nodejs npm: sudo apt-get install nodejs npm" >&2
        have_node=0
    fi
fi
[ $have_node = 1 ] && ! npm_install openai@7.60.0 playwright-core@1.65.2 && have_node=0
for mode in stream aligner none; do
    if [ $have_node = 0 ]; then
        skip=$((skip + 1))
        echo "skip openai client, mode $mode: node or the openai package is missing"
        continue
    fi
    want=$("$BIN/salign" align --upstream $UP --aligner $AL -p "$Q" --mode $mode --temp 0 --max-tokens 80 -t 1 -c 4096 2>/dev/null)
    trace=$("$BIN/salign" align --upstream $UP --aligner $AL -p "$Q" --mode $mode --temp 0 --max-tokens 80 -t 1 -c 4096 --json 2>/dev/null)
    got=$(NODE_PATH="$CACHE/node_modules" timeout 120 node tests/serve/openai-client.mjs "http://127.0.0.1:$port/v1" none $mode 80 "$Q" 2>"$TMP/node.err")
    MODE=$mode WANT=$want TRACE=$trace GOT=$got "$PY" - <<'EOF' 2>"$TMP/err"
import json, os, subprocess
want, got, trace = os.environ["WANT"], json.loads(os.environ["GOT"]), json.loads(os.environ["TRACE"])
# the demo aligner, never trained for the aligner mode's template, deletes the whole answer there:
# the upstream's answer it was given is compared as well
assert want or os.environ["MODE"] == "aligner", "salign align answered nothing"
orig = [s["original"] for s in trace["sentences"]]
assert orig and orig[0] and [s["original"] for s in got["trace"]["sentences"]] == orig, (orig, got["trace"])
assert got["stream"] == want, ("stream", got["stream"], want)
assert got["full"] == want, ("non-stream", got["full"], want)
assert got["stream_chunks"] > 3 - (want == "") and got["stream_finish"] in ("stop", "length"), got
assert got["models"] == ["salign"], got["models"]
def count(text, bos):
    out = subprocess.run(["bin/salign", "tokenize", "-m", "weights/stories260K.salm"] + ([] if bos else ["--no-bos"]),
                         input=text.encode(), capture_output=True, check=True).stdout.decode().split()
    return len(out)
# the plain template: BOS + the question; the answer in the upstream's tokens
u = got["usage"]
assert u["prompt_tokens"] == count("Lily had a red ball.", True), u
# generated tokens that make the answer: the upstream's alone, or the aligner's corrections
key = "upstream_decoded" if os.environ["MODE"] == "none" else "aligner_decoded"
assert u["completion_tokens"] == sum(s[key] for s in trace["sentences"]), (u, trace)
if os.environ["MODE"] == "none":
    assert u["completion_tokens"] == 80 or trace["stop"] == "end of turn", u
assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
assert got["stream_usage"] == u, (got["stream_usage"], u)
EOF
    if [ $? = 0 ]; then ok "openai client, mode $mode: streamed and non-streamed answers equal salign align's; usage counts"
    else
        cat "$TMP/err" "$TMP/node.err" | tail -n 5
        bad "openai client, mode $mode: streamed and non-streamed answers equal salign align's; usage counts"
    fi
done

# ---- 3. SSE framing ----
curl -s -N -D "$TMP/h" -o "$TMP/sse" "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    --data-binary "$(chat "$Q" ',"stream":true,"temperature":0,"max_tokens":40,"stream_options":{"include_usage":true},"salign":{"show_original":true}')"
"$PY" - "$TMP/sse" "$TMP/h" <<'EOF' 2>"$TMP/err"
import json, sys
raw = open(sys.argv[1], "rb").read().decode()
head = open(sys.argv[2]).read().lower()
assert "content-type: text/event-stream" in head, head
assert raw.endswith("data: [DONE]\n\n"), raw[-80:]
events = raw.split("\n\n")
assert events[-1] == "", "the stream ends with a blank line"
events = events[:-1]
for e in events:
    assert e.startswith("data: ") and "\n" not in e, repr(e)
chunks = [json.loads(e[6:]) for e in events[:-1]]
assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, chunks[0]
assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
usage, final = chunks[-1], chunks[-2]
assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0, usage
# OpenAI: with include_usage, every other chunk carries "usage": null
assert all("usage" in c and c["usage"] is None for c in chunks[:-1]), [c for c in chunks[:-1] if c.get("usage", 0) is not None][:1]
assert final["choices"][0]["finish_reason"] in ("stop", "length") and final["choices"][0]["delta"] == {}, final
assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
pairs = [c["salign"] for c in chunks[:-2] if "salign" in c]
text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-2])
assert pairs and " ".join(p["correction"] for p in pairs if p["correction"]) == text, (pairs, text)
EOF
check "SSE framing: role first, content deltas, finish_reason, usage, [DONE]; show_original pairs add up to the answer" $?
[ -s "$TMP/err" ] && tail -n 3 "$TMP/err"

# ---- 4. bad requests ----
bad_req() { # EXPECTED_STATUS DESCRIPTION BODY [curl flags]
    want=$1 what=$2 b=$3
    shift 3
    r=$(post /v1/chat/completions "$b" "$@")
    case "$r" in "$want "*'"error":{"message":'*'"type":'*'"param":'*'"code":'*) ok "$what: $want with an OpenAI error object" ;;
        *) bad "$what: $want with an OpenAI error object (got $r)" ;; esac
}
bad_req 400 "malformed JSON" '{"messages": [{"role": "user", "content": "hi"}'
bad_req 400 "messages of the wrong type" '{"messages": "hi"}'
bad_req 400 "a temperature of the wrong type" "$(chat "$Q" ',"temperature":"hot"')"
bad_req 400 "max_tokens out of range" "$(chat "$Q" ',"max_tokens":-1')"
bad_req 400 "empty messages" '{"messages": []}'
bad_req 400 "no user message last" '{"messages": [{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}'
bad_req 400 "an unknown role" '{"messages": [{"role":"tool","content":"a"}]}'
bad_req 400 "nesting beyond the depth limit" "{\"messages\": $(printf '%0.s[' $(seq 1 100))"
bad_req 400 "a body that is not an object" '[1,2,3]'
bad_req 400 "bytes after the JSON object" "$(chat "$Q")"'{"messages": 1}'
bad_req 400 "a JSON object followed by garbage" "$(chat "$Q") x"
r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: text/plain' --data-binary "$(chat "$Q")")
case "$r" in *'"error":{'*' 415') ok "a body that is not application/json: 415" ;; *) bad "a body that is not application/json: 415 ($r)" ;; esac
r=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/jsonx' --data-binary "$(chat "$Q" ',"max_tokens":2')")
r2=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json; charset=utf-8' --data-binary "$(chat "$Q" ',"max_tokens":2')")
check "Content-Type: application/jsonx 415, application/json with a charset 200 ($r $r2)" "$([ "$r$r2" = 415200 ] && echo 0 || echo 1)"
"$PY" -c 'import json; print(json.dumps({"messages": [{"role": "user", "content": "a b " * 3000}], "stream": True}))' >"$TMP/long"
r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$TMP/long")
case "$r" in *'"code":"context_length_exceeded"'*' 400') ok "a conversation longer than the context: 400 before streaming" ;;
    *) bad "a conversation longer than the context: 400 before streaming ($r)" ;; esac
head -c 1200000 /dev/zero | tr '\0' 'a' > "$TMP/big"
r=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$TMP/big")
check "a 1.2 MB body is a 413" "$([ "$r" = 413 ] && echo 0 || echo 1)"
r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/health")
check "the server is unaffected by the bad requests" "$([ "$r" = '{"status":"ok"} 200' ] && echo 0 || echo 1)"

# ---- 5. stop strings, /v1/completions ----
full=$(post /v1/chat/completions "$(chat "$Q" ',"temperature":0,"max_tokens":80')")
cut=$(post /v1/chat/completions "$(chat "$Q" ',"temperature":0,"max_tokens":80,"stop":["ball"]')")
FULL=$full CUT=$cut "$PY" -c 'import json, os
f = json.loads(os.environ["FULL"].split(" ", 1)[1])["choices"][0]["message"]["content"]
c = json.loads(os.environ["CUT"].split(" ", 1)[1])["choices"][0]
assert "ball" in f and c["message"]["content"] == f[:f.index("ball")] and c["finish_reason"] == "stop", (f, c)' 2>"$TMP/err"
check "a stop string ends the answer before it (finish_reason stop)" $?
r=$(post /v1/completions '{"prompt":"Once upon a time","temperature":0,"frequency_penalty":0,"max_tokens":30,"salign":{"mode":"none"}}')
want=$("$BIN/salign" generate -m $UP --chat -p "Once upon a time" --temp 0 --frequency-penalty 0 -n 30 -t 1 2>/dev/null)
R=$r WANT=$want "$PY" -c 'import json, os
s, b = os.environ["R"].split(" ", 1)
d = json.loads(b)
assert s == "200" and d["object"] == "text_completion" and d["choices"][0]["text"] == os.environ["WANT"], (s, b, os.environ["WANT"])' 2>"$TMP/err"
check "/v1/completions (raw prompt, mode none) equals generate --chat" $?

# ---- 6. a conversation: the second request evaluates only the new turn ----
t1=$(post /v1/chat/completions "$(chat "$Q" ',"temperature":0,"max_tokens":40')")
T1=$t1 "$PY" - "$port" <<'EOF' 2>"$TMP/err"
import json, os, sys, urllib.request
port = sys.argv[1]
def ask(msgs):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
        data=json.dumps({"messages": msgs, "temperature": 0, "max_tokens": 40}).encode(),
        headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))
q1 = "Lily had a red ball."
r1 = json.loads(os.environ["T1"].split(" ", 1)[1])
a1 = r1["choices"][0]["message"]["content"]
conv = [{"role": "user", "content": q1}, {"role": "assistant", "content": a1}, {"role": "user", "content": "Tom wanted to play."}]
r2 = ask(conv)
s1, s2 = r1["salign"]["sentences"][0], r2["salign"]["sentences"][0]
assert s2["upstream_prompt_reused"] >= s1["upstream_prompt_tokens"], (s1, s2)
assert s2["upstream_prompt_evaluated"] == s2["upstream_prompt_tokens"] - s2["upstream_prompt_reused"]
new_turn = s2["upstream_prompt_tokens"] - s1["upstream_prompt_tokens"]
assert 0 < s2["upstream_prompt_evaluated"] <= new_turn, (s2, new_turn)
# the same conversation after an unrelated request (nothing of it cached) gives the same answer
ask([{"role": "user", "content": "The sun was hot."}])
r3 = ask(conv)
assert r3["salign"]["sentences"][0]["upstream_prompt_reused"] < s1["upstream_prompt_tokens"]
assert r3["choices"][0]["message"]["content"] == r2["choices"][0]["message"]["content"]
print(f"turn 2: {s2['upstream_prompt_evaluated']} of {s2['upstream_prompt_tokens']} prompt tokens evaluated", file=sys.stderr)
EOF
rc=$?
cat "$TMP/err" | tail -n 2
check "multi-turn: the second request reuses the first turn and evaluates only the new one, same answer as uncached" $rc

# ---- 7. a client that disconnects mid-stream ----
# a long answer (-c 4096: thousands of tokens); the client reads the first chunks and leaves
long=$(chat "$Q" ',"stream":true,"temperature":0,"max_tokens":100000,"salign":{"mode":"none"}')
"$PY" - "$port" "$long" <<'EOF' 2>"$TMP/err"
import socket, sys, time
port, body = int(sys.argv[1]), sys.argv[2].encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          + b"Content-Length: %d\r\n\r\n" % len(body) + body)
got = b""
while got.count(b"data: ") < 3:
    got += s.recv(4096)
s.close()
EOF
t0=$(date +%s%N)
r=$(post /v1/chat/completions "$(chat "$Q" ',"temperature":0,"max_tokens":20')" | cut -c1-3)
t1=$(date +%s%N)
sleep 0.2
grep -q "cancelled (the client went away)" "$slog"
check "a client that disconnects mid-stream cancels its run ($(grep -o 'cancelled (the client went away).*' "$slog" | head -n1))" $?
check "the next request is served at once ($(( (t1 - t0) / 1000000 )) ms, status $r)" "$([ "$r" = 200 ] && [ $(( (t1 - t0) / 1000000 )) -lt 5000 ] && echo 0 || echo 1)"
stop
check "SIGTERM: the server exits 0" $?

# ---- 7b. an error during the stream: an upstream whose weights are NaN (loads with --no-verify) ----
cp $UP "$TMP/nan.salm"
"$PY" -c "
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
for o in range(len(b) - 20000, len(b) - 4000, 4): b[o:o + 4] = struct.pack('<I', 0x7fc00000)
open(sys.argv[1], 'wb').write(b)" "$TMP/nan.salm"
up_saved=$UP
UP=$TMP/nan.salm
start nan --aligner $AL --no-verify || bad "server with a broken upstream starts"
UP=$up_saved
wait_ready
curl -s -N -o "$TMP/nan.sse" "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    --data-binary "$(chat "$Q" ',"stream":true,"max_tokens":10')"
"$PY" - "$TMP/nan.sse" <<'EOF' 2>"$TMP/err"
import json, sys
ev = open(sys.argv[1]).read().split("\n\n")
assert ev[-1] == "" and all(e.startswith("data: ") for e in ev[:-1]), ev
ev = [json.loads(e[6:]) for e in ev[:-1]]  # no [DONE]: it would not parse
assert ev[0]["choices"][0]["delta"]["role"] == "assistant", ev
err = ev[-1]["error"]
assert "upstream" in err["message"] and err["type"] == "server_error" and "param" in err and "code" in err, err
EOF
check "an error during the stream is a data: {\"error\"} chunk and the stream ends (no [DONE])" $?
r=$(post /v1/chat/completions "$(chat "$Q" ',"max_tokens":10')")
case "$r" in 500*'"error":{"message":"upstream: '*) ok "the same without streaming: 500 with the error object" ;; *) bad "the same without streaming: 500 with the error object ($r)" ;; esac
r=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
check "the server goes on after a failed run ($r)" "$([ "$r" = 200 ] && echo 0 || echo 1)"
stop
check "SIGTERM: exit 0" $?

# ---- 8. auth ----
start auth --aligner $AL --api-key s3cret || bad "server with --api-key starts"
wait_ready
r1=$(post /v1/chat/completions "$(chat "$Q" ',"max_tokens":5')" | cut -c1-3)
r2=$(post /v1/chat/completions "$(chat "$Q" ',"max_tokens":5')" -H 'Authorization: Bearer s3cre' | cut -c1-3)
r3=$(post /v1/chat/completions "$(chat "$Q" ',"max_tokens":5')" -H 'Authorization: Bearer s3cret' | cut -c1-3)
r4=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "http://127.0.0.1:$port/v1/models")
r5=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
check "--api-key: none 401, wrong 401, right 200, /v1/models 401, /health open ($r1 $r2 $r3 $r4 $r5)" \
    "$([ "$r1$r2$r3$r4$r5" = 401401200401200 ] && echo 0 || echo 1)"
r6=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: bearer s3cret' "http://127.0.0.1:$port/v1/models")
r7=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: BEARER S3CRET' "http://127.0.0.1:$port/v1/models")
check "--api-key: the scheme name in any case 200, the key itself case-sensitive 401 ($r6 $r7)" \
    "$([ "$r6$r7" = 200401 ] && echo 0 || echo 1)"
stop
"$BIN/salign" serve --upstream $UP --aligner $AL --host 0.0.0.0 --port 0 -t 1 >"$TMP/open.log" 2>&1 &
op=$!
sleep 1
kill -TERM $op 2>/dev/null
wait $op
grep -q "without --api-key" "$TMP/open.log"
check "binding beyond loopback without --api-key says so on start-up" $?

# ---- 9. the queue: 12 clients, --queue 4 ----
SALIGN_SERVE_TEST_RUN_MS=1500 start queue --aligner $AL --queue 4 || bad "server with --queue starts"
wait_ready
# the first one is running (the worker waits 1.5 s before each run) when the other 11 arrive
cpids=""
for i in $(seq 1 12); do
    curl -s -D "$TMP/q$i.h" -o "$TMP/q$i.b" "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
        --data-binary "$(chat "$Q" ',"temperature":0,"max_tokens":10')" &
    cpids="$cpids $!"
    [ "$i" = 1 ] && sleep 0.5
done
wait $cpids
n200=0 n503=0 nra=0
for i in $(seq 1 12); do
    s=$(head -n1 "$TMP/q$i.h" | cut -d' ' -f2)
    [ "$s" = 200 ] && n200=$((n200 + 1))
    [ "$s" = 503 ] && n503=$((n503 + 1)) && grep -qi '^retry-after: ' "$TMP/q$i.h" && nra=$((nra + 1))
done
check "12 concurrent clients, --queue 4: 5 served, 7 refused with 503 and Retry-After ($n200, $n503, $nra)" \
    "$([ $n200 = 5 ] && [ $n503 = 7 ] && [ $nra = 7 ] && echo 0 || echo 1)"
# SIGINT with one run and two waiting (streams): the server cancels them, the streams end, exit 0
cpids=""
for i in 1 2 3; do
    curl -s -N -o "$TMP/int$i" "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
        --data-binary "$(chat "$Q" ',"stream":true,"max_tokens":10')" &
    cpids="$cpids $!"
done
sleep 0.5
t0=$(date +%s%N)
kill -INT "$spid"
wait "$spid"
st=$?
wait $cpids
t1=$(date +%s%N)
check "SIGINT with runs in progress and waiting: they are cancelled, exit $st in $(( (t1 - t0) / 1000000 )) ms" \
    "$([ $st = 0 ] && [ $(( (t1 - t0) / 1000000 )) -lt 3000 ] && echo 0 || echo 1)"
# --queue 0: none wait, but the one that finds the engine idle runs (a request is counted as waiting
# until the worker takes it, so a full-queue test of "waiting >= 0" refused every request)
SALIGN_SERVE_TEST_RUN_MS=1000 start queue0 --aligner $AL --queue 0 || bad "server with --queue 0 starts"
wait_ready
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    --data-binary "$(chat "$Q" ',"temperature":0,"max_tokens":10')" >"$TMP/q0a" &
qa=$!
sleep 0.4
s2=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    --data-binary "$(chat "$Q" ',"temperature":0,"max_tokens":10')")
wait $qa
s1=$(cat "$TMP/q0a")
stop
check "--queue 0: the request on an idle server is served, one arriving while it runs is refused ($s1, $s2)" \
    "$([ "$s1" = 200 ] && [ "$s2" = 503 ] && echo 0 || echo 1)"

# a stream that waits longer than --timeout for its run (queued, or a slow sentence) is not an idle
# connection: it used to be closed by the idle timeout after its first chunk, cancelling the run
SALIGN_SERVE_TEST_RUN_MS=2500 start waitlong --aligner $AL --timeout 1 || bad "server with --timeout 1 starts"
wait_ready
curl -s -N -o "$TMP/waitlong" "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    --data-binary "$(chat "$Q" ',"stream":true,"temperature":0,"max_tokens":10')"
stop
"$PY" - "$TMP/waitlong" <<'EOF' 2>"$TMP/err"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n"), raw[-200:]
chunks = [json.loads(l[6:]) for l in raw.split("\n") if l.startswith("data: {")]
assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]), raw[-200:]
EOF
check "a stream waiting 2.5 s for its run with --timeout 1 is answered to [DONE] (the wait is not idleness)" $?
[ -s "$TMP/err" ] && tail -n 2 "$TMP/err"

# ---- 10. a slow client; a load test ----
start slow --aligner $AL --timeout 3 -c 1024 || bad "server with --timeout starts"
wait_ready
"$PY" - "$port" <<'EOF' > "$TMP/slow.out" 2>&1 &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
t0 = time.time()
reply = b""
try:
    for i in range(100):
        s.sendall(b" ")
        s.settimeout(1.0)
        try:
            reply += s.recv(4096)
            if reply: break
        except socket.timeout:
            pass
except (BrokenPipeError, ConnectionResetError):
    pass
print(f"{time.time() - t0:.1f} {reply.split(b' ')[1].decode() if reply else 'closed'}")
EOF
slowpid=$!
"$PY" - "$port" <<'EOF' > "$TMP/slowh.out" 2>&1 &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
t0 = time.time()
how = "never"
for b in head:
    try:
        s.sendall(bytes([b]))
        s.settimeout(1.0)
        if s.recv(4096) == b"":
            how = "closed"
            break
    except socket.timeout:
        pass
    except (BrokenPipeError, ConnectionResetError):
        how = "closed"
        break
print(f"{time.time() - t0:.1f} {how}")
EOF
slowhpid=$!
sleep 1
t0=$(date +%s%N)
r=$(post /v1/chat/completions "$(chat "$Q" ',"temperature":0,"max_tokens":20')" | cut -c1-3)
t1=$(date +%s%N)
wait $slowpid $slowhpid
read -r secs status < "$TMP/slow.out"
read -r hsecs hstatus < "$TMP/slowh.out"
"$PY" -c "import sys; sys.exit(not 2 <= $hsecs <= 8)" && [ "$hstatus" = closed ]
check "a client sending its headers a byte a second is cut off ($hstatus after ${hsecs}s)" $?
case "$status" in 408|closed) "$PY" -c "import sys; sys.exit(not 2 <= $secs <= 8)"; rc=$? ;; *) rc=1 ;; esac
check "a client sending a byte a second is timed out ($status after ${secs}s)" $rc
check "meanwhile another client is served ($r in $(( (t1 - t0) / 1000000 )) ms)" "$([ "$r" = 200 ] && [ $(( (t1 - t0) / 1000000 )) -lt 3000 ] && echo 0 || echo 1)"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$spid/status"; }
load() { # N requests, 4 at a time; prints the count of 200s
    seq 1 "$1" | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/v1/chat/completions" \
        -H 'Content-Type: application/json' --data-binary "$(chat "Tom saw a dog." ',"max_tokens":30,"stream":true')" | grep -c '^200$'
}
n1=$(load 50)
m1=$(rss)
n2=$(load 250)
m2=$(rss)
if [ "$BIN" = bin ]; then
    check "load: 300 requests, 4 at a time, all answered ($n1 + $n2); memory stable (RSS ${m1} kB after 50, ${m2} kB after 300)" \
        "$([ $((n1 + n2)) = 300 ] && [ -n "$m1" ] && [ -n "$m2" ] && [ $((m2 - m1)) -lt 8192 ] && echo 0 || echo 1)"
else # ASan holds freed memory in quarantine, so RSS grows; LeakSanitizer checks the exit (stop) instead
    check "load: 300 requests, 4 at a time, all answered ($n1 + $n2); leaks: LeakSanitizer at exit" \
        "$([ $((n1 + n2)) = 300 ] && echo 0 || echo 1)"
fi

# ---- 11. the page in headless Chromium ----
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run-serve: installing chromium" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >&2
fi
if [ $have_node = 0 ] || ! command -v chromium >/dev/null 2>&1; then
    skip=$((skip + 1))
    echo "skip the page in Chromium: node, playwright-core or chromium is missing"
else
    got=$(NODE_PATH="$CACHE/node_modules" timeout 120 node tests/serve/page.mjs "http://127.0.0.1:$port/" "$OUT/serve-page.png" 2>"$TMP/node.err")
    GOT=$got PORT=$port "$PY" - <<'EOF' 2>"$TMP/err"
import json, os
g = json.loads(os.environ["GOT"])
assert g["answer"] and len(g["pairs"]) >= 1, g
assert " ".join(c for _, c in g["pairs"] if c) == g["answer"], g
assert "total" in g["meta"] and g["console"] == [], g
assert all(u.startswith(f"http://127.0.0.1:{os.environ['PORT']}/") for u in g["requests"]), g["requests"]
assert "default-src 'none'" in g["csp"], g["csp"]
EOF
    if [ $? = 0 ]; then ok "the page: a question streams its answer and the original/correction pairs ($OUT/serve-page.png)"
    else
        tail -n 5 "$TMP/err" "$TMP/node.err"
        bad "the page: a question streams its answer and the original/correction pairs"
    fi
fi
stop
check "SIGTERM after the load: exit 0" $?
finish
