#!/bin/sh
# run-chat.sh - `salign chat` through a pseudo-terminal (tests/serve/chat_pty.py): the first turn's
# answer equals `salign align`'s greedy answer, a /mode switch takes effect, Ctrl-C during a long
# answer stops it (what was shown is a prefix of the full answer) and the program goes on, Ctrl-C at
# the prompt and right behind a pasted line gives a fresh prompt, /quit exits 0. Then the same chat on a pipe (no terminal).
# SALIGN_BIN_DIR=bin-san runs the ASan build. Ends with "N passed, N failed, N skipped".
cd "$(dirname "$0")/.." || exit 1
BIN=${SALIGN_BIN_DIR:-bin}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/salign-chat.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
UP=weights/stories260K.salm AL=weights/demo-aligner.salm
flags="--temp 0 -t 1 -c 4096 --max-tokens 3000"
if [ ! -x "$BIN/salign" ]; then
    bad "$BIN/salign built"
    echo "$pass passed, $fail failed, 0 skipped"
    exit 1
fi
# shellcheck disable=SC2086
"$BIN/salign" align --upstream $UP --aligner $AL -p "Lily had a red ball." $flags >"$TMP/a1" 2>/dev/null
# shellcheck disable=SC2086
"$BIN/salign" align --upstream $UP --aligner $AL -p "The sun was hot." --mode none $flags >"$TMP/a3" 2>/dev/null
# shellcheck disable=SC2086
"$BIN/salign" align --upstream $UP --aligner $AL -p "The cat ran." --mode none $flags >"$TMP/a4" 2>/dev/null
if timeout 180 "$PY" tests/serve/chat_pty.py "$BIN/salign" >"$TMP/pty.json" 2>"$TMP/pty.err"; then
    ok "chat runs in a pseudo-terminal: two turns, /mode, Ctrl-C three times, /quit"
else
    tail -n 3 "$TMP/pty.err"
    bad "chat runs in a pseudo-terminal: two turns, /mode, Ctrl-C three times, /quit"
fi
if ! "$PY" - "$TMP/pty.json" "$TMP/a1" "$TMP/a3" "$TMP/a4" <<'PYEOF' >"$TMP/checks" 2>&1
import json, os, re, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("FAIL the pseudo-terminal checks ran (chat_pty.py gave no result)")
a1 = open(sys.argv[2], encoding="utf-8", errors="replace").read().rstrip("\n")
a3 = open(sys.argv[3], encoding="utf-8", errors="replace").read().rstrip("\n")
a4 = open(sys.argv[4], encoding="utf-8", errors="replace").read().rstrip("\n")
strip = lambda s: re.sub(r"\x1b\[[0-9;]*m", "", s).replace("\r\n", "\n")
def check(name, cond):
    print(("ok   " if cond else "FAIL ") + name)
t1 = strip(d["turn1"])
# after the last echo of the typed line (chat_pty.py types once the editor is ready, so there is one;
# a line typed ahead of the editor's raw mode is echoed by the terminal and again by the editor)
ans1 = t1.rsplit("Lily had a red ball.\n", 1)[-1].rsplit("\n(stream:", 1)[0]
check("the first turn's answer equals salign align's greedy answer", a1 != "" and ans1 == a1)
check("/mode none switches the mode", "mode none" in d["mode"] and "(none:" in strip(d["turn2"]))
def cut_short(shown, full):
    """shown is full[:i] + full[j:k] with 0 < i <= j <= k < len(full): the terminal's Ctrl-C throws
    away the output still on its way (a gap at the end of what was written) and a token written as
    the signal came may follow it; never all of the answer, never anything else"""
    i = len(os.path.commonprefix([shown, full]))
    rest = shown[i:]
    if not rest:
        return 0 < i < len(full)
    j = full.find(rest, i)
    return i > 0 and j > i and j + len(rest) < len(full)
c = strip(d["cancel"])
shown = c.split("\n[cancelled", 1)[0].replace("^C", "")
check("Ctrl-C stops the answer being written: what was shown is the full answer's start (less what the terminal's Ctrl-C threw away)",
      "[cancelled" in c and "^C" in c and cut_short(shown, a3))
check("Ctrl-C at the prompt: a fresh prompt", re.fullmatch(r"\s*> ", strip(d["prompt_intr"])) is not None)
p = strip(d["paste_intr"])
check("Ctrl-C right behind a pasted line (5 times): a fresh prompt, no answer",
      p.count("\n> ") >= 5 and "(stream:" not in p and "[cancelled" not in p)
# the cancelled turn and the pasted text are left out: the next line is a new conversation's first
ans4 = strip(d["after"]).rsplit("The cat ran.\n", 1)[-1].rsplit("\n(none:", 1)[0]
check("after Ctrl-C (during an answer, at the prompt, behind a paste) the chat goes on: "
      "the next answer equals salign align's", a4 != "" and ans4 == a4)
check("/quit exits 0", d["exit"] == 0)
PYEOF
then
    grep -q '^FAIL the pseudo-terminal checks ran' "$TMP/checks" || echo "FAIL the pseudo-terminal checks ran" >>"$TMP/checks"
fi
cat "$TMP/checks"
pass=$((pass + $(grep -c '^ok' "$TMP/checks"))) fail=$((fail + $(grep -c '^FAIL' "$TMP/checks")))
# standard input that is not a terminal: line by line, no prompt
# shellcheck disable=SC2086
printf 'Lily had a red ball.\n/mode none\nTom saw a dog.\n' | "$BIN/salign" chat --upstream $UP --aligner $AL $flags \
    >"$TMP/pipe" 2>"$TMP/pipe.err"
st=$?
if [ $st = 0 ] && [ "$(head -n 1 "$TMP/pipe")" = "$(head -n 1 "$TMP/a1")" ] && grep -q '^(none: ' "$TMP/pipe"; then
    ok "chat on a pipe: the same first answer, /mode, exit 0"
else
    head -c 300 "$TMP/pipe"; tail -n 3 "$TMP/pipe.err"
    bad "chat on a pipe: the same first answer, /mode, exit 0 (status $st)"
fi
# a bad flag is one line naming it, exit 1
out=$("$BIN/salign" chat --upstream $UP --mode sideways 2>&1 >/dev/null)
st=$?
if [ $st = 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && case "$out" in *--mode*) true ;; *) false ;; esac; then
    ok "a bad flag: one line naming it, exit 1"
else
    bad "a bad flag: one line naming it, exit 1 ($st: $out)"
fi
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" = 0 ]
