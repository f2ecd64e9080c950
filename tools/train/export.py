"""export.py - the trained aligner to .salm, and a check that salign computes what PyTorch computes.

    /usr/bin/python3 tools/train/export.py [--ckpt build/train/aligner.pt] [--out weights/demo-aligner.salm]

1. llama2.c version-1 checkpoint (fp32, "ak42"; model.export_llama2c) -> build/train/aligner.bin
2. bin/salign-quantize aligner.bin OUT --type f32 --tokenizer tests/data/tok512.bin --aligner-template plain
3. logits of salign (tools/train/logits.c, linked with build/libsalign.a, F32 KV cache) against PyTorch's on real
   aligner prompts + corrections: NMSE = sum (a - b)^2 / sum b^2 must be < 1e-5, and the argmax must agree.
Prints "export: ..." lines; exits non-zero when a check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from common import ROOT, TOK512, build_tool, render, tokenize  # noqa: E402
from model import Aligner, Config, export_llama2c  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def load(ckpt):
    d = torch.load(ckpt, map_location="cpu")
    m = Aligner(Config(**d["config"]))
    m.load_state_dict(d["model"])
    m.eval()
    return m, d


def salign_logits(exe, salm, ids, vocab):
    r = subprocess.run([exe, salm], input=" ".join(map(str, ids)).encode(), stdout=subprocess.PIPE, check=True)
    return torch.frombuffer(bytearray(r.stdout), dtype=torch.float32).view(len(ids), vocab)


def check(model, salm, samples, tmp):
    """Worst NMSE and argmax agreement over the samples (lists of ids)."""
    exe = build_tool("logits")
    worst, agree, total = 0.0, 0, 0
    for ids in samples:
        with torch.no_grad():
            ref = model(torch.tensor([ids]))[0].double()
        got = salign_logits(exe, salm, ids, model.c.vocab_size).double()
        nmse = ((got - ref) ** 2).sum().item() / (ref ** 2).sum().item()
        worst = max(worst, nmse)
        agree += (got.argmax(-1) == ref.argmax(-1)).sum().item()
        total += len(ids)
    return worst, agree, total


def sample_ids(records_path, n):
    recs = []
    with open(records_path) as f:
        for line in f:
            recs.append(json.loads(line))
    step = max(1, len(recs) // n)
    picked = recs[::step][:n]
    texts = [render(r) + (" " + r["correction"] if r["correction"] else "") for r in picked]
    return tokenize(texts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(ROOT, "build", "train", "aligner.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "weights", "demo-aligner.salm"))
    ap.add_argument("--records", default=os.path.join(ROOT, "build", "train", "records-test.jsonl"))
    ap.add_argument("--samples", type=int, default=8)
    a = ap.parse_args()
    model, meta = load(a.ckpt)
    binpath = os.path.splitext(a.ckpt)[0] + ".bin"
    export_llama2c(model, binpath)
    subprocess.run([os.path.join(ROOT, "bin", "salign-quantize"), binpath, a.out, "--type", "f32", "--tokenizer",
                    TOK512, "--aligner-template", "plain", "-q"], check=True)
    print("export: %s -> %s (%d bytes) -> %s (%d bytes)" % (a.ckpt, binpath, os.path.getsize(binpath), a.out,
                                                          os.path.getsize(a.out)))
    samples = sample_ids(a.records, a.samples)
    with tempfile.TemporaryDirectory() as tmp:
        worst, agree, total = check(model, a.out, samples, tmp)
    ok = worst < 1e-5 and agree == total
    print("export: salign vs PyTorch logits on %d sequences (%d tokens): worst NMSE %.2e, argmax agrees on %d/%d: %s" % (
        len(samples), total, worst, agree, total, "ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
