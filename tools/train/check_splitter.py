"""check_splitter.py [FILE.jsonl ...] - the Python splitter (common.split_sentences) against the engine's
(src/sentence.c, built here as a throwaway program) on every story of the given data files plus a set of
edge cases. Prints "N passed, N failed" and exits non-zero on any difference."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, split_sentences  # noqa: E402

EDGE = [
    "Hello world. How are you? Fine!", "  leading space. next", "Use tools, i.e. hammers. Done.",
    "Fruit, e.g. apples, is good. Yes.", "Pi is 3.14 roughly. Ok.", "Steps: 1. Mix. 2. Bake.",
    "It happened in 2019. Then more.", "Dr. Smith arrived. He sat.", "Wait... really?! Yes.",
    'He said "stop." She left.', "(Like this.) Then", "She said \u201cno.\u201d Then", "One. Two without end", "   ",
    "Line one\nline two. Next", "i.e.", "e.", "Say i.e", "x e.g", "a.\u2019", "end.\u00bb x", "q?\u201d", "", "...",
    'Lily said, "Why are you sad?" Tom said, "I lost my ball."\nThey looked.', "ends with i.", "e.g. start",
]


def main():
    texts = list(EDGE)
    for path in sys.argv[1:]:
        with open(path) as f:
            for line in f:
                texts.append(json.loads(line)["answer"])
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "splitcheck")
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["cc", "-std=c11", "-O1", "-I" + os.path.join(ROOT, "src"), os.path.join(here, "splitcheck.c"),
                        os.path.join(ROOT, "src", "sentence.c"), "-o", exe, "-lutf8proc"], check=True)
        inp = b"".join(t.encode("utf-8", "surrogateescape") + b"\0" for t in texts)
        out = subprocess.run([exe], input=inp, stdout=subprocess.PIPE, check=True).stdout
    got = out.split(b"\x1e")[:-1]
    passed = failed = 0
    for t, g in zip(texts, got):
        want = [s.decode("utf-8", "surrogateescape") for s in g.split(b"\x1f")[:-1]]
        if split_sentences(t) == want:
            passed += 1
        else:
            failed += 1
            if failed <= 5:
                print("DIFF on %r:\n  python %r\n  C      %r" % (t[:200], split_sentences(t), want))
    if len(got) != len(texts):
        failed += 1
        print("splitcheck returned %d texts for %d" % (len(got), len(texts)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
