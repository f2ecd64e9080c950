#!/bin/sh
# deps.sh data|train - what the demo aligner's recipe needs beyond `make all`: python3 (data, evaluation)
# and Debian's PyTorch (training). Installs with apt-get when missing and running as root; otherwise
# prints the exact command and fails. Prints the python to use on success (python3 from /usr/bin: the
# Debian packages are invisible to other pythons on PATH).
set -e
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
need=""
[ -n "$py" ] || need="python3"
if [ "$1" = train ] && { [ -z "$py" ] || ! "$py" -c 'import torch' >/dev/null 2>&1; }; then
    need="$need python3-torch"
fi
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "salign: installing missing packages:$need" >&2
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >&2
        py=/usr/bin/python3
    else
        echo "salign: missing packages:$need; install them with: sudo apt-get install -y$need" >&2
        exit 1
    fi
fi
echo "$py"
