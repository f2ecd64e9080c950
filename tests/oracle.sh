# tests/oracle.sh - sourced by the tests/run-*.sh parts: what a part does when an oracle or tool
# one of its checks needs is missing (and could not be installed). The check did not happen, so the
# part fails (exit status 1) either way: no part exits 0 over a check it skipped. Its result line
# counts the check as skipped ("skip NAME: why" says which; tests/run.sh lists those lines), or,
# with SALIGN_REQUIRE_ORACLES=1 (set by .ci/run), as failed: CI's last line then shows 0 skipped.

oracle_required() { [ "${SALIGN_REQUIRE_ORACLES:-}" = 1 ]; }

# missing_oracle NAME WHY [N]: none of the part's N checks (default 1) can run; ends the part.
missing_oracle() {
    echo "skip $1: $2"
    if oracle_required; then
        echo "$1: SALIGN_REQUIRE_ORACLES=1: a missing oracle or tool is a failure"
        echo "0 passed, ${3:-1} failed"
    else
        echo "0 passed, 0 failed, ${3:-1} skipped"
    fi
    exit 1
}

# oracle_result PASS FAIL SKIP: a part's result line when some of its checks were skipped (each
# said why on its own "skip NAME: why" line); returns the part's status.
oracle_result() {
    if oracle_required && [ "$3" != 0 ]; then
        echo "SALIGN_REQUIRE_ORACLES=1: $3 skipped check(s) count as failed"
        echo "$1 passed, $(($2 + $3)) failed, 0 skipped"
        return 1
    fi
    echo "$1 passed, $2 failed, $3 skipped"
    [ "$2" = 0 ] && [ "$3" = 0 ]
}

# npm_install package@version...: npm packages into the oracle cache $CACHE (the caller sets it),
# unless already there; returns non-zero when npm fails.
npm_install() {
    # (sh functions share the caller's variables: these names are used nowhere else)
    npm_need=""
    for npm_p in "$@"; do
        [ -f "$CACHE/node_modules/${npm_p%@*}/package.json" ] || npm_need="$npm_need $npm_p"
    done
    [ -z "$npm_need" ] && return 0
    mkdir -p "$CACHE" || return 1
    [ -f "$CACHE/package.json" ] || echo '{"name": "salign-oracles", "private": true}' > "$CACHE/package.json"
    echo "npm: installing$npm_need into $CACHE" >&2
    (cd "$CACHE" && npm install --save-exact --no-audit --no-fund --loglevel=error $npm_need >&2)
}
