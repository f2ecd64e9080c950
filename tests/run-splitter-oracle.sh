#!/bin/sh
# run-splitter-oracle.sh - src/sentence.c's reference mode against the reference implementation's own
# rule: tests/oracles/splitter_oracle.py runs the Stream Aligner code's two regular expressions (as its
# split_first_sentence applies them) on hand-written cases and a seeded generated corpus (4 x 3,000
# texts: numbers, "i.e."/"e.g." after letters, digits, Unicode letters, terminator and quote runs) and
# compares where the first sentence ends, allowing only sentence.h's documented improvements (the
# closing run kept with its sentence, a final fragment kept); it also feeds every prefix in streaming
# mode and checks that a reported boundary never moves. About 1 s. Needs python3 and a C compiler
# (the build's). Ends with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
. tests/oracle.sh
command -v python3 >/dev/null 2>&1 || missing_oracle run-splitter-oracle "no python3 (sudo apt-get install -y python3)"
mkdir -p build
bin=build/oracle-split-first
# linked as the library is (utf8proc for the reference's Unicode word characters)
if ! ${CC:-cc} -std=c11 -O1 -Wall -Wextra -Isrc tests/oracles/split_first.c src/sentence.c -lutf8proc -o $bin \
    >build/oracle-split-first.txt 2>&1; then
    cat build/oracle-split-first.txt
    echo "run-splitter-oracle: cannot build tests/oracles/split_first.c"
    echo "0 passed, 1 failed"
    exit 1
fi
python3 tests/oracles/splitter_oracle.py $bin
