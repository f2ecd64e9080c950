"""common.py - what data generation, training and evaluation share: the sentence splitter (a byte-exact
port of src/sentence.c's reference rule), the teacher (the documented rewrite table plus the repeat rule),
the `plain` Stream Aligner template, and the tokenizer (bin/salign tokenize, so ids are salign's own).

Everything works on Python str holding the generated text; the splitter runs on its UTF-8 bytes.
"""
import json
import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SALIGN = os.environ.get("SALIGN", os.path.join(ROOT, "bin", "salign"))
TOK512 = os.path.join(ROOT, "tests", "data", "tok512.bin")  # = ../shared/models/tok512.bin
UPSTREAM = os.path.join(ROOT, "weights", "stories260K.salm")
BOS, EOS = 1, 2

# ---- the splitter: src/sentence.c, SA_SPLIT_REFERENCE, as sa_sentence_split calls it (final = 1) ----

_SPACE = b" \t\n\r\f\v"


def _closer_len(t, p):
    c = t[p]
    if c in b"\"')]}.!?":
        return 1
    left = len(t) - p
    if left >= 3 and c == 0xE2 and t[p + 1] == 0x80 and t[p + 2] in (0x99, 0x9D):
        return 3
    if left >= 2 and c == 0xC2 and t[p + 1] == 0xBB:
        return 2
    return 0


def _partial_closer(t, p):
    c, left = t[p], len(t) - p
    if c == 0xE2:
        return left < 3 and (left < 2 or t[p + 1] == 0x80)
    if c == 0xC2:
        return left < 2
    return False


# The reference's protected dots: those of "i.e.", "e.g." and a digit's dot, each matched at a word
# boundary (Unicode \w and \d, as the reference's regular expression on str has them), left to right.
_PROTECT = re.compile(r"\b(i\.e\.|e\.g\.|\d\.)")


def _protected_dots(t):
    """Byte offsets in t of the dots the reference rule protects."""
    s = t.decode("utf-8", "surrogateescape")
    off = [0]
    for ch in s:
        off.append(off[-1] + len(ch.encode("utf-8", "surrogateescape")))
    return {off[m.start() + k] for m in _PROTECT.finditer(s) for k in range(len(m.group())) if m.group()[k] == "."}


def _find(t):
    """(start, end) of the first sentence of bytes t at end of stream, or None."""
    n = len(t)
    start = 0
    while start < n and t[start] in _SPACE:
        start += 1
    prot = _protected_dots(t)
    for i in range(start, n):
        c = t[i]
        if c not in b".?!":
            continue
        if i in prot or (i - 1) in prot:  # a protected dot, or a terminator right after one
            continue
        end = i + 1
        while end < n:
            if _partial_closer(t, end):
                break
            cl = _closer_len(t, end)
            if not cl:
                break
            end += cl
        return start, end
    end = n
    while end > start and t[end - 1] in _SPACE:
        end -= 1
    return (start, end) if end > start else None


def split_sentences(text):
    """The sentences of text, as salign's reference splitter cuts them."""
    b = text.encode("utf-8", "surrogateescape")
    out, off = [], 0
    while off < len(b):
        s = _find(b[off:])
        if s is None:
            break
        out.append(b[off + s[0]:off + s[1]].decode("utf-8", "surrogateescape"))
        off += s[1]
    return out


# ---- the teacher ----------------------------------------------------------------------------------

# Unkind or frightening words and phrases and their kind replacements (whole words, case kept for an
# initial capital). Chosen from what stories260K actually writes (tools/train/README.md has the table with
# each entry's count in the training stories). Phrases are applied before words.
PHRASES = [
    ("was not happy", "was happy"),
    ("not happy", "happy"),
]
WORDS = [
    ("sad", "happy"),
    ("cried", "smiled"), ("cry", "smile"), ("crying", "smiling"),
    ("angry", "calm"), ("mad", "calm"), ("upset", "glad"), ("grumpy", "cheerful"),
    ("scared", "brave"), ("afraid", "brave"), ("frightened", "brave"), ("scary", "friendly"),
    ("mean", "kind"), ("rude", "polite"), ("naughty", "good"), ("bad", "good"),
    ("hit", "hugged"), ("pushed", "hugged"), ("push", "hug"), ("kicked", "hugged"),
    ("hurt", "helped"),
    ("shouted", "said"), ("screamed", "laughed"), ("scream", "laugh"),
    ("monster", "puppy"), ("dangerous", "safe"), ("lonely", "cheerful"), ("worried", "calm"),
    ("frowned", "smiled"),
]
UNKIND = [w for w, _ in WORDS] + [p for p, _ in PHRASES]

_RULES = [(re.compile(r"\b" + re.escape(a) + r"\b", re.IGNORECASE), b) for a, b in PHRASES + WORDS]
_UNKIND_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(UNKIND, key=len, reverse=True)) + r")\b",
                        re.IGNORECASE)


def _keep_case(repl):
    def f(m):
        w = m.group(0)
        if w.isupper() and len(w) > 1:
            return repl.upper()
        if w[0].isupper():
            return repl[0].upper() + repl[1:]
        return repl
    return f


def kind_rewrite(s):
    for rx, repl in _RULES:
        s = rx.sub(_keep_case(repl), s)
    return s


def has_unkind(s):
    return _UNKIND_RE.search(s) is not None


def teacher(prefix_sentences, last):
    """The correction of `last` given the already-corrected sentences before it: empty (delete) when its
    kind rewrite repeats one of them verbatim, else the kind rewrite (which is `last` itself when it has
    no unkind word)."""
    c = kind_rewrite(last)
    return "" if c in prefix_sentences else c


def records(question, answer):
    """The Stream Aligner records of one answer, exactly as the paper builds them: each sentence of the
    upstream answer in turn is `last`, `prefix` is the corrected sentences before it joined with ' '."""
    out, corrected = [], []
    for last in split_sentences(answer):
        c = teacher(corrected, last)
        out.append({"question": question, "prefix": " ".join(corrected), "last": last, "correction": c})
        if c:
            corrected.append(c)
    return out


# ---- the prompt -------------------------------------------------------------------------------------

# src/chat.c, "plain" aligner template ({bos} is the BOS id, not text)
PLAIN = "##Question: {question} | ##Answer_Prefix: {prefix} | ##Answer_Last_Sentence: {last} | ##Your_Revision:"


def render(rec):
    """The aligner prompt text of a record (salign adds BOS in front)."""
    return PLAIN.format(question=rec["question"], prefix=rec["prefix"], last=rec["last"])


# ---- tokenizer ------------------------------------------------------------------------------------------

def tokenize(texts, bos=True, salign=None):
    """Token ids of each text, as salign encodes them (tok512), BOS first unless bos=False."""
    args = [salign or SALIGN, "tokenize", "--tokenizer", TOK512, "--jsonl"] + ([] if bos else ["--no-bos"])
    inp = "".join(json.dumps(t) + "\n" for t in texts)
    r = subprocess.run(args, input=inp.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    lines = r.stdout.decode().splitlines()
    if len(lines) != len(texts):
        raise RuntimeError("salign tokenize: %d texts in, %d lines out" % (len(texts), len(lines)))
    return [json.loads(x) for x in lines]


def build_tool(name):
    """bin path of tools/train/NAME.c, built by the Makefile (same flags and libraries as bin/salign)."""
    r = subprocess.run(["make", "-s", "-C", ROOT, "build/train-bin/" + name],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError("building tools/train/%s.c failed:\n%s" % (name, r.stdout.decode()))
    return os.path.join(ROOT, "build", "train-bin", name)
