#!/bin/sh
# run-help-flags.sh - every flag a subcommand's --help lists is one its parser accepts (so the help cannot
# promise a flag that does not exist), and the flags the parsers take (the string literals they compare
# arguments with in src/) appear in some command's help. Ends with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
all_help=$(mktemp)
trap 'rm -f "$all_help"' EXIT
for cmd in generate tokenize info align bench bench-spec bench-align eval eval-merge report judge perplexity serve chat; do
    help=$(bin/salign "$cmd" --help 2>/dev/null) || { bad "$cmd --help exits 0"; continue; }
    printf '%s\n' "$help" >> "$all_help"
    missing=""
    # eval and eval-merge share one help text: a flag of it belongs to one of them
    other=$cmd
    [ "$cmd" = eval ] && other=eval-merge
    [ "$cmd" = eval-merge ] && other=eval
    for f in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
        case "$f" in --upstream-*|--aligner-*) [ "$f" = --aligner-template ] || [ "$f" = --aligner-mode-template ] || continue ;; esac
        # an unknown flag is refused as such; a known one fails, if at all, for another reason
        out=$(timeout 20 bin/salign "$cmd" "$f" 1 </dev/null 2>&1 >/dev/null)
        case "$out" in *"$f: unknown flag"*)
            out=$(timeout 20 bin/salign "$other" "$f" 1 </dev/null 2>&1 >/dev/null)
            case "$out" in *"$f: unknown flag"*) missing="$missing $f" ;; esac ;;
        esac
    done
    [ -z "$missing" ] && ok "$cmd: every flag of its --help is accepted" || bad "$cmd: --help lists flags its parser refuses:$missing"
done
# the parsers' flags: literals compared with an argument in the command-line code
undocumented=""
for f in $(grep -ho 'strcmp(a, "--[a-z][a-z0-9-]*")' src/cli.c src/engine_opts.c src/bench.c src/bench_spec.c src/bench_align.c src/eval.c \
             src/report.c src/judge.c src/perplexity.c src/serve.c src/chat_cli.c 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    [ "$f" = --help ] && continue
    grep -q -- "$f\b" "$all_help" || undocumented="$undocumented $f"
done
[ -z "$undocumented" ] && ok "every flag the parsers take is in some --help" || bad "flags missing from every --help:$undocumented"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
