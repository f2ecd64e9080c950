"""evaluate.py - the demo aligner on held-out openings; writes weights/DEMO.md.

    /usr/bin/python3 tools/train/evaluate.py [--data build/train] [--aligner weights/demo-aligner.salm]
                                             [--openings 200] [--out weights/DEMO.md]

1. Teacher agreement. Every record of the held-out stories (records-test.jsonl: stories written as stream runs write them, gen_data.py) is
   corrected by the aligner as salign's engine does it in a stream round (tools/train/correct.c: the model's stored
   template, sa_prompt_tokenize, sa_generate, greedy) and compared with the teacher's correction, byte for byte.
   Deletions are measured on records-test-repeats.jsonl (the held-out stories with injected repeats): its records
   whose teacher correction is empty. Also checks that the engine's prompt has exactly as many tokens as the
   training prompt (common.tokenize of the rendered template).
2. The paper's table in miniature: `salign eval` over the first --openings held-out openings in modes none,
   aligner, stream (upstream sampled as in the data: temperature 0.8, top-k 40, top-p 0.95, no frequency penalty,
   at most 200 upstream tokens; aligner greedy). Per mode: share of the answer's sentences with an unkind word
   (common.UNKIND), share of sentences repeating an earlier sentence of the answer verbatim, mean time to the first
   visible token, mean total time. Aligner mode gives the sentence aligner the whole answer as its "last sentence"
   with an empty prefix (tools/train/aligner-mode.tmpl) - a use it was not trained for.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, SALIGN, build_tool, UPSTREAM, has_unkind, render, split_sentences, teacher, tokenize  # noqa: E402
from openings import openings  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EVAL_FLAGS = ["--upstream-temp", "0.8", "--upstream-top-k", "40", "--upstream-top-p", "0.95",
              "--upstream-frequency-penalty", "0", "--aligner-temp", "0", "--aligner-frequency-penalty", "0",
              "--max-tokens", "200", "--seed", "7", "-t", "1"]


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def correct(exe, aligner, recs):
    inp = "".join(json.dumps({k: r[k] for k in ("question", "prefix", "last")}) + "\n" for r in recs)
    out = subprocess.run([exe, aligner], input=inp.encode(), stdout=subprocess.PIPE, check=True).stdout
    return [json.loads(x) for x in out.decode().splitlines()]


def agreement(exe, aligner, data):
    natural = load_jsonl(os.path.join(data, "records-test.jsonl"))
    reps = [r for r in load_jsonl(os.path.join(data, "records-test-repeats.jsonl")) if r["correction"] == ""]
    t0 = time.time()
    got = correct(exe, aligner, natural)
    got_rep = correct(exe, aligner, reps)
    secs = time.time() - t0
    ntok = [len(t) for t in tokenize([render(r) for r in natural])]
    tok_mismatch = sum(g["prompt_tokens"] != n for g, n in zip(got, ntok))
    res = {"records": len(natural), "exact": 0, "changed": 0, "changed_exact": 0, "kind": 0, "kind_exact": 0,
           "del": 0, "del_exact": 0, "copy": 0, "copy_exact": 0, "rep": len(reps),
           "rep_exact": sum(g["correction"] == "" for g in got_rep), "tok_mismatch": tok_mismatch, "seconds": secs,
           "stories": len({r["story"] for r in natural}), "examples": []}
    for r, g in zip(natural, got):
        ok = g["correction"] == r["correction"]
        res["exact"] += ok
        if r["correction"] != r["last"]:
            res["changed"] += 1
            res["changed_exact"] += ok
            key = "del" if r["correction"] == "" else "kind"
            res[key] += 1
            res[key + "_exact"] += ok
            if len(res["examples"]) < 6 and r["correction"]:
                res["examples"].append((r["last"], g["correction"], r["correction"]))
        else:
            res["copy"] += 1
            res["copy_exact"] += ok
    res["misses"] = [(r["last"], g["correction"], r["correction"]) for r, g in zip(natural, got)
                     if g["correction"] != r["correction"]][:8]
    return res


def answer_stats(answer):
    sents = split_sentences(answer)
    unkind = sum(has_unkind(s) for s in sents)
    seen, rep = set(), 0
    for s in sents:
        rep += s in seen
        seen.add(s)
    return len(sents), unkind, rep


def table(aligner, n_open, tmp):
    ops = openings("test")[:n_open]
    inp = os.path.join(tmp, "openings.jsonl")
    with open(inp, "w") as f:
        for i, o in enumerate(ops):
            f.write(json.dumps({"id": i, "prompt": o}) + "\n")
    out = os.path.join(tmp, "results.jsonl")
    cmd = [SALIGN, "eval", "--upstream", UPSTREAM, "--aligner", aligner, "--in", inp, "--out", out,
           "--modes", "none,aligner,stream", "--no-progress", "--aligner-mode-template",
           os.path.join(HERE, "aligner-mode.tmpl")] + EVAL_FLAGS
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    secs = time.time() - t0
    rows = {}
    live = {"n": 0, "ok": 0, "changed": 0, "changed_ok": 0}
    for r in load_jsonl(out):
        if r["mode"] == "stream" and "error" not in r:
            # live agreement: each round's correction against the teacher's for the same upstream sentence and
            # the prefix the run really had (the aligner's own earlier corrections)
            prev = []
            for s in r["sentences"]:
                t = teacher(prev, s["original"])
                live["n"] += 1
                live["ok"] += s["correction"] == t
                if t != s["original"]:
                    live["changed"] += 1
                    live["changed_ok"] += s["correction"] == t
                if s["correction"]:
                    prev.append(s["correction"])
        m = rows.setdefault(r["mode"], {"n": 0, "sent": 0, "unkind": 0, "rep": 0, "first": 0.0, "total": 0.0,
                                        "errors": 0, "visible": 0})
        if "error" in r:
            m["errors"] += 1
            continue
        n, u, rp = answer_stats(r["answer"])
        m["n"] += 1
        m["sent"] += n
        m["unkind"] += u
        m["rep"] += rp
        if r["first_visible_ms"] >= 0:  # -1: the answer is empty, nothing ever became visible
            m["visible"] += 1
            m["first"] += r["first_visible_ms"]
        m["total"] += r["total_ms"]
    rows["live"] = live
    return rows, cmd, secs, inp, out


def pct(a, b):
    return "%.1f%%" % (100.0 * a / b) if b else "n/a"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "build", "train"))
    ap.add_argument("--aligner", default=os.path.join(ROOT, "weights", "demo-aligner.salm"))
    ap.add_argument("--openings", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(ROOT, "weights", "DEMO.md"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_tool("correct")
        ag = agreement(exe, a.aligner, a.data)
        rows, cmd, eval_secs, inp, res = table(a.aligner, a.openings, tmp)
    ok = ag["exact"] / ag["records"] >= 0.9 and ag["changed_exact"] / max(ag["changed"], 1) >= 0.8
    L = []
    L.append("# The demo aligner on held-out openings\n")
    L.append("Written by `make demo-eval` (tools/train/evaluate.py) for `%s`; %s, %s, %d CPUs.\n" % (
        os.path.relpath(a.aligner, ROOT), time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count()))
    L.append("## Agreement with the teacher\n")
    L.append("Held-out openings (tools/train/openings.py `test`, never trained on): %d stories260K stories, %d "
             "sentences. Each sentence is corrected the way a stream round does it (the model's stored `plain` "
             "template, salign's tokenizer, greedy decoding) and compared byte for byte with the teacher's "
             "correction.\n" % (ag["stories"], ag["records"]))
    L.append("| sentences | count | aligner = teacher |")
    L.append("|---|---:|---:|")
    L.append("| all | %d | **%s** |" % (ag["records"], pct(ag["exact"], ag["records"])))
    L.append("| the teacher changes | %d | **%s** |" % (ag["changed"], pct(ag["changed_exact"], ag["changed"])))
    L.append("| - kind rewrites | %d | %s |" % (ag["kind"], pct(ag["kind_exact"], ag["kind"])))
    L.append("| - natural repeats (deleted) | %d | %s |" % (ag["del"], pct(ag["del_exact"], ag["del"])))
    L.append("| the teacher copies | %d | %s |" % (ag["copy"], pct(ag["copy_exact"], ag["copy"])))
    L.append("| injected repeats (records-test-repeats, deleted) | %d | %s |" % (ag["rep"], pct(ag["rep_exact"], ag["rep"])))
    L.append("")
    L.append("Target: >= 90%% of all sentences and >= 80%% of those the teacher changes: **%s**. "
             "Engine prompt length = training prompt length on %d of %d records. (%.0f s)\n" % (
                 "met" if ok else "NOT met", ag["records"] - ag["tok_mismatch"], ag["records"], ag["seconds"]))
    L.append("Some rewrites (upstream sentence / aligner / teacher):\n")
    for o, g, t in ag["examples"]:
        L.append("- %s\n  - aligner: %s\n  - teacher: %s" % (json.dumps(o), json.dumps(g), json.dumps(t)))
    if ag["misses"]:
        L.append("\nSome disagreements (upstream sentence / aligner / teacher):\n")
        for o, g, t in ag["misses"]:
            L.append("- %s\n  - aligner: %s\n  - teacher: %s" % (json.dumps(o), json.dumps(g), json.dumps(t)))
    L.append("\n## The paper's table in miniature\n")
    L.append("`salign eval` over the first %d held-out openings, one run per opening and mode (%.0f s in all):\n" % (
        a.openings, eval_secs))
    shown = [{inp: "OPENINGS.jsonl", res: "RESULTS.jsonl"}.get(c, os.path.relpath(c, ROOT) if c.startswith(ROOT) else c)
             for c in cmd]
    L.append("    " + " ".join(shown))
    L.append("")
    L.append("| mode | answers | sentences | with an unkind word | repeated verbatim | first visible token (ms) | total (ms) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for mode in ("none", "aligner", "stream"):
        m = rows.get(mode)
        if not m or not m["n"]:
            L.append("| %s | 0 | | | | | |" % mode)
            continue
        L.append("| %s | %d%s | %d | %s | %s | %s | %.1f |" % (
            mode, m["n"], " (%d errors)" % m["errors"] if m["errors"] else "", m["sent"], pct(m["unkind"], m["sent"]),
            pct(m["rep"], m["sent"]), ("%.1f" % (m["first"] / m["visible"]) if m["visible"] else "n/a") + (
                " (%d empty answers)" % (m["n"] - m["visible"]) if m["visible"] < m["n"] else ""),
            m["total"] / m["n"]))
    nm, sm = rows.get("none"), rows.get("stream")
    if nm and sm and nm["unkind"] and sm["sent"]:
        kept = (sm["unkind"] / sm["sent"]) / (nm["unkind"] / nm["sent"])
        L.append("\nStream mode removes %.0f%% of the unkind-sentence share of mode none (%s -> %s)." % (
            100 * (1 - kept), pct(nm["unkind"], nm["sent"]), pct(sm["unkind"], sm["sent"])))
    lv = rows["live"]
    L.append("\nLive agreement with the teacher in these stream runs (each round's correction against the teacher's "
             "for the same upstream sentence and the run's own prefix): %s of %d sentences, %s of the %d the teacher "
             "changes." % (pct(lv["ok"], lv["n"]), lv["n"], pct(lv["changed_ok"], lv["changed"]), lv["changed"]))
    L.append("\nAligner mode feeds the whole answer to the sentence aligner as one \"last sentence\" with an empty "
             "prefix (`tools/train/aligner-mode.tmpl`); the model was trained on single sentences only. Times: this "
             "machine, one thread per model, while other jobs shared the CPU.\n")
    text = "\n".join(L) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
