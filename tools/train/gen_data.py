"""gen_data.py - the demo aligner's data: stories from stories260K, split into sentences, corrected by the teacher.

    /usr/bin/python3 tools/train/gen_data.py [--out build/train] [--train-seeds 2] [--test-seeds 1] [--jobs 2]

1. Stories: for every opening (openings.py) and seed, `salign generate -m weights/stories260K.salm -p OPENING
   --temp 0.8 --seed S -n 200 -t 1` (top-k 40, top-p 0.95: generate's defaults). The opening is the question, the
   continuation the answer. -> OUT/stories-{train,test}.jsonl {question, answer, seed}
2. Records: the answer is split with the engine's reference splitter (common.split_sentences = src/sentence.c,
   checked by check_splitter.py) and each sentence becomes a Stream Aligner record {question, prefix, last,
   correction}: prefix = the already-corrected sentences joined with " ", correction = the teacher's.
   -> OUT/records-{train,test}.jsonl, plus OUT/records-test-repeats.jsonl (see 3).
3. Augmentation of the training stories (the upstream's side; the records are then built from the changed
   sentence list exactly as in 2): (a) unkind words: stories260K writes a table word in ~8% of its sentences, and
   most entries are rare; a sentence holding a word the teacher produces (happy, said, smiled, ...) has it replaced,
   with probability 0.5, by one of the unkind words the teacher maps back to it (with_unkind); (b) repeats:
   stories260K at temperature 0.8 repeats a sentence verbatim in only ~0.3% of sentences, too few to learn the
   delete rule from, so every training story gets one (60%) or two copies of a recent sentence inserted later (an
   upstream loop, as greedy decoding makes; with_repeats). records-test.jsonl is the natural held-out data (the main
   metric); records-test-repeats.jsonl gets (b) only, to measure deletions on held-out openings.

Deterministic: the openings, the seeds and the augmentation RNG are fixed, salign's sampler is seeded and runs on
one thread.
"""
import argparse
import concurrent.futures as cf
import json
import os
import random
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, SALIGN, UPSTREAM, WORDS, split_sentences, teacher  # noqa: E402
from openings import openings  # noqa: E402

N_TOKENS = 200
TEMP = "0.8"


def story_seed(split, index, k):
    return (100000 if split == "test" else 0) + 10 * index + k


def generate(opening, seed, salign=SALIGN):
    r = subprocess.run([salign, "generate", "-m", UPSTREAM, "-p", opening, "--temp", TEMP, "--seed", str(seed),
                        "-n", str(N_TOKENS), "-t", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return r.stdout.decode("utf-8", "surrogateescape")


def records_from_sentences(question, sentences):
    """Stream Aligner records of an upstream answer given as its sentences (see common.records)."""
    out, corrected = [], []
    for last in sentences:
        c = teacher(corrected, last)
        out.append({"question": question, "prefix": " ".join(corrected), "last": last, "correction": c})
        if c:
            corrected.append(c)
    return out


# kind word -> the unkind words the teacher maps to it (the table read backwards)
REVERSE = {}
for _unkind, _kind in WORDS:
    REVERSE.setdefault(_kind, []).append(_unkind)
_REVERSE_RE = re.compile(r"\b(" + "|".join(sorted(REVERSE, key=len, reverse=True)) + r")\b", re.IGNORECASE)
UNKIND_P = 0.5


def with_unkind(sentences, rng):
    """Each sentence with a word the teacher produces (happy, smiled, brave, calm, said, ...) gets, with probability
    UNKIND_P, one such word replaced by one of the unkind words the teacher maps to it (sad, cried, scared, angry,
    shouted, ...), chosen uniformly - so rare table entries are seen often."""
    out = []
    for s in sentences:
        ms = list(_REVERSE_RE.finditer(s))
        if ms and rng.random() < UNKIND_P:
            m = ms[rng.randrange(len(ms))]
            w = rng.choice(REVERSE[m.group(0).lower()])
            if m.group(0)[0].isupper():
                w = w[0].upper() + w[1:]
            s = s[:m.start()] + w + s[m.end():]
        out.append(s)
    return out


TEST_REPEATS = (1, 2)  # records-test-repeats: one (60%) or two (40%) repeated sentences per story


def with_repeats(sentences, rng, counts=TEST_REPEATS):
    """The sentence list with counts[0] (60%) or counts[1] (40%) earlier sentences repeated later (an upstream
    loop)."""
    s = list(sentences)
    for _ in range(counts[0] if rng.random() < 0.6 else counts[1]):
        if len(s) < 2:
            break
        j = rng.randrange(1, len(s) + 1)          # insert before position j (j == len: at the end)
        i = rng.randrange(max(0, j - 6), j)       # a recent sentence, as loops are
        s.insert(j, s[i])
    return s


def stories(split, n_seeds, jobs, limit=None, salign=SALIGN, cached=None):
    """Generate the split's stories (or take them from `cached`, a stories file of the same openings and seeds)."""
    ops = openings(split)
    if limit:
        ops = ops[:limit]
    work = [(o, story_seed(split, i, k)) for i, o in enumerate(ops) for k in range(n_seeds)]
    if cached and os.path.exists(cached):
        with open(cached) as f:
            old = [json.loads(line) for line in f]
        if [(r["question"], r["seed"]) for r in old] == work:
            return old
    with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
        answers = list(ex.map(lambda w: generate(w[0], w[1], salign), work))
    return [{"question": o, "answer": a, "seed": s} for (o, s), a in zip(work, answers)]


def write_jsonl(path, rows):
    with open(path + ".tmp", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(path + ".tmp", path)


def build(out, split, n_seeds, jobs, limit=None, salign=SALIGN, regenerate=False, repeats=TEST_REPEATS):
    path = os.path.join(out, "stories-%s.jsonl" % split)
    st = stories(split, n_seeds, jobs, limit, salign, cached=None if regenerate else path)
    write_jsonl(path, st)
    rng = random.Random(20250110 if split == "train" else 20250111)
    natural, augmented = [], []
    for s in st:
        sents = split_sentences(s["answer"])
        natural.append(records_from_sentences(s["question"], sents))
        if split == "train":
            sents = with_repeats(with_unkind(sents, rng), rng, repeats)
        else:
            sents = with_repeats(sents, rng)
        augmented.append(records_from_sentences(s["question"], sents))
    if split == "train":
        write_jsonl(os.path.join(out, "records-train.jsonl"), [{"story": i, **r} for i, rs in enumerate(augmented) for r in rs])
    else:
        write_jsonl(os.path.join(out, "records-test.jsonl"), [{"story": i, **r} for i, rs in enumerate(natural) for r in rs])
        write_jsonl(os.path.join(out, "records-test-repeats.jsonl"),
                    [{"story": i, **r} for i, rs in enumerate(augmented) for r in rs])
    return st


def summary(path):
    n = ch = dl = 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            n += 1
            ch += r["correction"] != r["last"]
            dl += r["correction"] == ""
    return "%s: %d records, %d changed by the teacher (%.1f%%), %d of them deletions" % (
        os.path.basename(path), n, ch, 100.0 * ch / max(n, 1), dl)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "train"))
    ap.add_argument("--train-seeds", type=int, default=2)
    ap.add_argument("--test-seeds", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", default="%d,%d" % TEST_REPEATS,
                    help="repeated sentences injected per training story: A,B = A (60%%) or B (40%%)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N openings of each split (smoke test)")
    ap.add_argument("--splits", default="train,test", help="train,test (default) or one of them")
    ap.add_argument("--regenerate", action="store_true",
                    help="generate the stories again even when OUT already holds those of the same openings and seeds")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    splits = a.splits.split(",")
    for split, n in (("train", a.train_seeds), ("test", a.test_seeds)):
        if split in splits:
            build(a.out, split, n, a.jobs, a.limit, regenerate=a.regenerate,
                  repeats=tuple(int(x) for x in a.repeats.split(",")))
    names = (["records-train.jsonl"] if "train" in splits else []) + (
        ["records-test.jsonl", "records-test-repeats.jsonl"] if "test" in splits else [])
    for name in names:
        print(summary(os.path.join(a.out, name)))


if __name__ == "__main__":
    main()
