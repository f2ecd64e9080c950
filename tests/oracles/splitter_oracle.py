"""splitter_oracle.py - src/sentence.c's reference splitter against the reference implementation's rule.

The Stream Aligner code (generation/tf_annotate.py, split_first_sentence) cuts the first sentence of
the upstream's text with two regular expressions: a substitution that turns the dots of "i.e.",
"e.g." and of a digit-dot (each matched after a word boundary, r'\\b(i\\.e\\.|e\\.g\\.|\\d\\.)') into a
placeholder, then a split on [.?!] not preceded by the placeholder; the first sentence is the
stripped text before the first split point plus that terminator, or "" when there is none. This
script runs that rule (Python's re, Unicode word boundaries and digits as the reference has them)
on a seeded generated corpus and on hand-written cases, and compares where the first sentence
ends with sa_sentence_find(final = 1) in reference mode (tests/oracles/split_first.c), and that
streaming (final = 0, on every prefix) never reports another first sentence. Allowed are
only sentence.h's documented improvements: a run of closing punctuation and quotes after the
terminator stays with the sentence, and text without a terminator is a final sentence instead of
"". One test per corpus seed and one for the hand-written cases; prints "N passed, N failed".

usage: splitter_oracle.py SPLIT_FIRST_BINARY [N_PER_SEED]"""
import random
import re
import subprocess
import sys

PROTECT = re.compile(r"\b(i\.e\.|e\.g\.|\d\.)")
SPLIT = re.compile(r"(?<!<DOT>)([.?!])")
# sentence.h's closing run: quotes, brackets and further terminators
CLOSERS = set("\"')]}.!?\u2019\u201d\u00bb")
SEEDS = [11, 12, 13, 14]

EDGE = [
    "Hello world. How are you? Fine!", "  leading space. next", "Use tools, i.e. hammers. Done.",
    "Fruit, e.g. apples, is good. Yes.", "Pi is 3.14 roughly. Ok.", "Steps: 1. Mix. 2. Bake.",
    "It happened in 2019. Then more.", "Pi is 13.5 roughly. Ok.", "x3. y", "Dr. Smith arrived. He sat.",
    "Wait... really?! Yes.", 'He said "stop." She left.', "(Like this.) Then", "She said \u201cno.\u201d Then",
    "One. Two without end", "   ", "", "Line one\nline two. Next", "i.e.", "e.", "Say i.e", "x e.g", "a.\u2019",
    "end.\u00bb x", "q?\u201d", "...", "ends with i.", "e.g. start", "Taxi.e.g. ok. B", "i.e.g. x. y",
    "e.i.e. x. y", "3i.e. x. y", "_e.g. x. y", "\u00e9i.e. x. y", "Item 1.. next. z", "See i.e.? yes. z",
    "e.g.! wow. z", "\u0663. x. y", "x\u0663. y. z", "\u0661\u0662. y. z", "A 1.5.3 version. z",
    "Sums: 1.2. then. z", "Hello . World. z", "a .b. c",
]


def reference_first(text):
    """The reference's first sentence, exactly as its substitution and split produce it."""
    sub = PROTECT.sub(lambda m: m.group().replace(".", "<DOT>"), text)
    parts = SPLIT.split(sub)
    if len(parts) < 2:
        return ""
    return parts[0].replace("<DOT>", ".").strip() + parts[1]


def reference_cut(text):
    """Where the reference cuts: the index of the first terminator it splits on, or None. The same
    rule as reference_first, on positions: the dots a PROTECT match covers, and a terminator right
    after one of them, do not split."""
    protected = set()
    for m in PROTECT.finditer(text):
        protected.update(i for i in range(m.start(), m.end()) if text[i] == ".")
    for i, ch in enumerate(text):
        if ch in ".?!" and i not in protected and (i - 1) not in protected:
            return i
    return None


def expected(text):
    """(start, end) character offsets sa_sentence_find must report, or None for no sentence."""
    cut = reference_cut(text)
    body = text.lstrip(" \t\n\r\f\v")
    start = len(text) - len(body)
    if cut is None:  # documented improvement: the text left at end of stream is a final sentence
        end = len(text.rstrip(" \t\n\r\f\v"))
        return (start, end) if end > start else None
    end = cut + 1
    while end < len(text) and text[end] in CLOSERS:  # documented improvement: the closing run
        end += 1
    return (min(start, cut), end)


def gen_text(rng):
    words = ["Tom", "the", "cat", "sat", "x", "i", "e", "g", "ie", "A", "B", "\u00e9lan", "na\u00efve", "\u03a3",
             "\u65e5\u672c", "x3", "3x", "_a", "a_", "Dr", "Mr", "is", "it", "ok"]
    numbers = ["1", "3", "3.5", "13.5", "2019", "0.5", "1,000", "\u0663", "\u0661\u0662", "7th", "42"]
    abbrevs = ["i.e.", "e.g.", "I.e.", "E.g.", "i.e", "e.g", "xi.e.", "3i.e.", "_e.g.", "\u00e9i.e.", "i.e.g.",
               "e.i.e.", "etc."]
    terms = [".", "?", "!", "...", "?!", "..", "!?", ".\"", "?)", ".\u201d", ".\u2019", "!\u00bb"]
    seps = [" ", " ", " ", "  ", "\n", "\t", "", ", ", "; "]
    opens = ["\"", "(", "\u201c", "\u00ab", ""]
    out = [rng.choice(["", "", " ", "\n "])]
    for _ in range(rng.randint(1, 14)):
        r = rng.random()
        if r < 0.45:
            out.append(rng.choice(words))
        elif r < 0.65:
            out.append(rng.choice(numbers))
        elif r < 0.8:
            out.append(rng.choice(abbrevs))
        elif r < 0.95:
            out.append(rng.choice(terms))
        else:
            out.append(rng.choice(opens))
        out.append(rng.choice(seps))
    return "".join(out)


def c_cuts(binary, texts):
    data = b"".join(t.encode("utf-8") + b"\0" for t in texts)
    res = subprocess.run([binary, "reference"], input=data, stdout=subprocess.PIPE, check=True).stdout.decode()
    return res.splitlines()


def char_span(text, line):
    """A "START END STREAM" line's byte offsets as character offsets."""
    if line.startswith("-"):
        return None
    bs, be = (int(x) for x in line.split()[:2])
    b = text.encode("utf-8")
    return (len(b[:bs].decode("utf-8")), len(b[:be].decode("utf-8")))


def check(binary, name, texts):
    bad = []
    for t in texts:
        # the two readings of the reference rule agree (the oracle checks itself)
        cut = reference_cut(t)
        want_text = "" if cut is None else t[:cut].strip() + t[cut]
        if reference_first(t) != want_text:
            bad.append("oracle disagrees with itself on %r: %r vs %r" % (t, reference_first(t), want_text))
    lines = c_cuts(binary, texts)
    if len(lines) != len(texts):
        bad.append("split_first answered %d texts of %d" % (len(lines), len(texts)))
    for t, line in zip(texts, lines):
        if not line.endswith(" 1"):
            bad.append("%r: a prefix fed while streaming reports another first sentence than the whole text" % t)
        got, want = char_span(t, line), expected(t)
        if got != want:
            bad.append("%r: sentence.c %r, the reference %r (allowing the closing run and a final fragment: %r)" % (
                t, None if got is None else t[got[0]:got[1]], reference_first(t),
                None if want is None else t[want[0]:want[1]]))
    if bad:
        print("FAIL %s: %d of %d texts differ" % (name, len(bad), len(texts)))
        for b in bad[:8]:
            print("    " + b)
        return False
    print("ok   %s: %d texts" % (name, len(texts)))
    return True


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    passed = failed = 0
    suites = [("hand-written cases", EDGE)]
    for seed in SEEDS:
        rng = random.Random(seed)
        suites.append(("corpus seed %d" % seed, [gen_text(rng) for _ in range(n)]))
    for name, texts in suites:
        if check(binary, name, texts):
            passed += 1
        else:
            failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
