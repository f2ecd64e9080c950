"""smoke.py - the CI smoke test of the demo aligner's recipe (tests/run-train-smoke.sh runs it). Never retrains the
shipped model: it runs every stage on a few stories with a tiny model, in a temporary folder.

  1. data: gen_data on 3 openings per split; the Python splitter = src/sentence.c on those stories + edge cases
  2. teacher: the rewrite table, the repeat rule, the records' prefixes
  3. tokenization: prompt ids from `salign tokenize` are a prefix of prompt + correction ids (the training target)
  4. forward_packed = each record's own causal forward pass
  5. a few training steps: the loss is finite and goes down
  6. export: llama2.c v1 -> salign-quantize -> salign's logits = PyTorch's (NMSE < 1e-5)
  7. the shipped weights/demo-aligner.salm still corrects held-out sentences as the teacher does (engine path)
Prints one line per check and ends with "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import ROOT, build_tool, kind_rewrite, records, teacher  # noqa: E402

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   %s%s" % (name, " (" + detail + ")" if detail else ""), flush=True)
    else:
        failed += 1
        print("FAIL %s%s" % (name, " (" + detail + ")" if detail else ""), flush=True)


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def main():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        # 1. data and splitter
        r = run([py, os.path.join(HERE, "gen_data.py"), "--out", tmp, "--limit", "3", "--train-seeds", "1"])
        check("gen_data on 3 openings per split", r.returncode == 0, r.stdout.decode().strip().replace("\n", "; "))
        r = run([py, os.path.join(HERE, "check_splitter.py"), os.path.join(tmp, "stories-train.jsonl"),
                 os.path.join(tmp, "stories-test.jsonl")])
        check("Python splitter = src/sentence.c", r.returncode == 0, r.stdout.decode().strip().splitlines()[-1]
              if r.stdout else "")

        # 2. teacher
        check("teacher: rewrite table", kind_rewrite("Sad Tom cried and was scared, angry and mean.") ==
              "Happy Tom smiled and was brave, calm and kind.")
        check("teacher: whole words only", kind_rewrite("Sadie had a hitch.") == "Sadie had a hitch.")
        recs = records("Q.", "Tom was sad. He played. Tom was happy. He played. The end")
        check("teacher: repeats deleted, prefix = corrected sentences",
              [x["correction"] for x in recs] == ["Tom was happy.", "He played.", "", "", "The end"] and
              recs[4]["prefix"] == "Tom was happy. He played.", json.dumps([x["correction"] for x in recs]))
        check("teacher: copy otherwise", teacher(["A b."], "C d.") == "C d.")

        try:
            import torch  # noqa: F401
        except ImportError:
            check("PyTorch (apt-get install python3-torch) for checks 3-6", False)
            return
        import torch
        import torch.nn.functional as F
        from model import Aligner, Config
        from train import load_jsonl, make_batch, packed_logits_targets, prepare

        # 3. tokenization
        recs = load_jsonl(os.path.join(tmp, "records-train.jsonl"))
        data, bad = prepare(recs)
        check("prompt ids are a prefix of prompt + correction ids", bad == 0,
              "%d records, %d stories" % (len(recs), len(data)))

        # 4. packed forward = per-record forward
        torch.manual_seed(0)
        m = Aligner(Config(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=96, seq_len=1024))
        with torch.no_grad():
            trunk, chunks, _, lens = make_batch(data[:2])
            outs = m.forward_packed(trunk, chunks)
            err = 0.0
            for (seg, story, lcp), lp, ln in zip(chunks, outs, lens):
                for j in range(len(seg)):
                    s, l, n = int(story[j]), int(lcp[j]), ln[j]
                    ref = m(torch.tensor([data[s]["trunk"][:l] + seg[j, :n].tolist()]))[0, l:]
                    err = max(err, (ref - lp[j, :n]).abs().max().item())
        check("forward_packed = per-record causal forward", err < 1e-4, "max |diff| %.1e" % err)

        # 5. a few steps
        opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
        losses = []
        batch = data[:4]
        for _ in range(8):
            outs, tgts = packed_logits_targets(m, batch)
            loss = F.cross_entropy(torch.cat([o[t >= 0] for o, t in zip(outs, tgts)]), torch.cat([t[t >= 0] for t in tgts]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        check("training steps: loss finite and falling", all(x == x for x in losses) and losses[-1] < losses[0] - 0.5,
              "%.3f -> %.3f" % (losses[0], losses[-1]))

        # 6. export and logits
        ck = os.path.join(tmp, "tiny.pt")
        torch.save({"config": m.c.as_dict(), "model": m.state_dict()}, ck)
        r = run([py, os.path.join(HERE, "export.py"), "--ckpt", ck, "--out", os.path.join(tmp, "tiny.salm"),
                 "--records", os.path.join(tmp, "records-test.jsonl"), "--samples", "3"])
        check("export -> salign-quantize -> salign logits = PyTorch", r.returncode == 0,
              r.stdout.decode().strip().splitlines()[-1] if r.stdout else "")

        # 7. the shipped model through the engine's correction path
        shipped = os.path.join(ROOT, "weights", "demo-aligner.salm")
        if os.path.exists(shipped):
            from evaluate import correct
            test = load_jsonl(os.path.join(tmp, "records-test.jsonl"))
            exe = build_tool("correct")
            t0 = time.time()
            got = correct(exe, shipped, test)
            same = sum(g["correction"] == x["correction"] for g, x in zip(got, test))
            check("shipped demo-aligner.salm agrees with the teacher on held-out sentences", same >= 0.8 * len(test),
                  "%d/%d in %.1f s" % (same, len(test), time.time() - t0))
        else:
            check("weights/demo-aligner.salm present", False)


if __name__ == "__main__":
    t0 = time.time()
    try:
        main()
    except Exception as e:  # report, do not crash without the summary line
        import traceback
        traceback.print_exc()
        check("smoke test ran to the end", False, repr(e))
    print("(%.0f s)" % (time.time() - t0))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
