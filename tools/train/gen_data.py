"""gen_data.py - the demo aligner's data: stories from stories260K, split into sentences, corrected by the teacher.

    /usr/bin/python3 tools/train/gen_data.py [--out build/train] [--train-seeds 2] [--test-seeds 1] [--jobs 2]
                                             [--repeats 1,2] [--limit N] [--splits train,test] [--regenerate]

1. Stories, written as a stream run writes them (stream_stories): for every opening (openings.py) and seed, the
   upstream (weights/stories260K.salm, temperature 0.8, top-k 40, top-p 0.95) continues OPENING + " " + the
   teacher-corrected story so far, and the first sentence the engine's reference splitter (common.split_sentences =
   src/sentence.c, checked by check_splitter.py) finds in its text is the next sentence; until EOS or about 200
   upstream tokens. All stories advance one round per `salign eval --modes none` call.
   -> OUT/stories-{train,test}.jsonl {question, seed, sentences, answer}
2. Records: each sentence becomes a Stream Aligner record {question, prefix, last, correction}: prefix = the
   already-corrected sentences joined with " ", correction = the teacher's.
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
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, SALIGN, UPSTREAM, WORDS, split_sentences, teacher  # noqa: E402
from openings import openings  # noqa: E402

N_TOKENS = 200
TEMP = "0.8"


def story_seed(split, index, k):
    return (100000 if split == "test" else 0) + 10 * index + k


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


ROUND_TOKENS = 48    # upstream tokens drawn per round; the first sentence of them is kept
CHARS_PER_TOKEN = 2.1  # stories260K's text per tok512 token (415 chars per 200-token story)
MAX_ROUNDS = 40


def _eval_round(prompts, ids, salign, tmp, jobs=1, n_tokens=ROUND_TOKENS):
    """One upstream step for many stories at once: `salign eval --modes none` continues every prompt for
    ROUND_TOKENS tokens (sampled as in a stream run; each record's seed comes from its id), in `jobs` processes."""
    if jobs > 1 and len(ids) > 1:
        n = (len(ids) + jobs - 1) // jobs
        parts = [(prompts[k:k + n], ids[k:k + n], os.path.join(tmp, str(j))) for j, k in enumerate(range(0, len(ids), n))]
        for _, _, d in parts:
            os.makedirs(d, exist_ok=True)
        with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
            return [r for rs in ex.map(lambda a: _eval_round(a[0], a[1], salign, a[2], 1, n_tokens), parts) for r in rs]
    inp, out = os.path.join(tmp, "round-in.jsonl"), os.path.join(tmp, "round-out.jsonl")
    with open(inp, "w") as f:
        for i, p in zip(ids, prompts):
            f.write(json.dumps({"id": i, "prompt": p}) + "\n")
    subprocess.run([salign, "eval", "--upstream", UPSTREAM, "--in", inp, "--out", out, "--modes", "none",
                    "--no-resume", "--no-progress", "--upstream-temp", TEMP, "--upstream-top-k", "40",
                    "--upstream-top-p", "0.95", "--upstream-frequency-penalty", "0", "--max-tokens",
                    str(n_tokens), "--seed", "1", "-t", "1"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    res = {}
    with open(out) as f:
        for line in f:
            r = json.loads(line)
            res[r["id"]] = r
    return [res[i] for i in ids]


def stream_stories(work, salign, tmp, jobs=1):
    """Stories written the way a stream run writes them: the upstream continues from the opening and the
    teacher-corrected prefix (plain template: OPENING + " " + PREFIX), one sentence per round; the sentence is
    the first one the engine's splitter finds in the round's text (or the whole text when the round ends without
    one, as the engine's max-sentence cap does). A story ends at the upstream's EOS or when its N_TOKENS upstream
    tokens are spent (counted as the engine counts them, estimated from the text: a sentence and the one token
    read past it); the last round draws only what is left, and an unfinished sentence there is the story's last
    sentence, cut mid-word as a stream run that reaches --max-tokens cuts it. So the aligner trains on the
    sentences it will see live - e.g. a closing quote the upstream adds at the start of the next round, after the
    prefix was re-joined with spaces - not on one-shot text."""
    st = [{"question": o, "seed": sd, "sentences": [], "corrected": [], "tokens": 0, "done": False} for o, sd in work]
    for rnd in range(MAX_ROUNDS):
        act = [k for k, x in enumerate(st) if not x["done"]]
        if not act:
            break
        groups = {}  # tokens to draw this round -> stories (one eval call per distinct budget)
        for k in act:
            groups.setdefault(min(ROUND_TOKENS, N_TOKENS - st[k]["tokens"]), []).append(k)
        for ask in sorted(groups):
            ks = groups[ask]
            prompts = [st[k]["question"] + (" " + " ".join(st[k]["corrected"]) if st[k]["corrected"] else "")
                       for k in ks]
            ids = ["%d-%d" % (st[k]["seed"], rnd) for k in ks]
            for k, r in zip(ks, _eval_round(prompts, ids, salign, tmp, jobs, ask)):
                x = st[k]
                if "error" in r:
                    raise RuntimeError("salign eval: %s" % r["error"])
                sents = split_sentences(r["answer"])
                if not sents:
                    x["done"] = True
                    continue
                last = sents[0]
                x["sentences"].append(last)
                c = teacher(x["corrected"], last)
                if c:
                    x["corrected"].append(c)
                x["tokens"] += int(len(last) / CHARS_PER_TOKEN) + 1
                eos = r["stop"] != "max tokens"
                unfinished = len(sents) == 1 and not eos  # the round's text ended inside its first sentence
                if (eos and len(sents) == 1) or (unfinished and ask < ROUND_TOKENS) or x["tokens"] >= N_TOKENS:
                    x["done"] = True
    return [{"question": x["question"], "seed": x["seed"], "sentences": x["sentences"],
             "answer": " ".join(x["sentences"])} for x in st]


def stories(split, n_seeds, jobs, limit=None, salign=SALIGN, cached=None):
    """The split's stories (or those of `cached`, a stories file of the same openings and seeds)."""
    ops = openings(split)
    if limit:
        ops = ops[:limit]
    work = [(o, story_seed(split, i, k)) for i, o in enumerate(ops) for k in range(n_seeds)]
    if cached and os.path.exists(cached):
        with open(cached) as f:
            old = [json.loads(line) for line in f]
        if [(r["question"], r["seed"]) for r in old] == work and all("sentences" in r for r in old):
            return old
    with tempfile.TemporaryDirectory() as tmp:
        return stream_stories(work, salign, tmp, jobs)


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
        sents = s["sentences"]
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
