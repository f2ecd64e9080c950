"""train.py - train the demo aligner on the teacher's Stream Aligner records (gen_data.py).

    /usr/bin/python3 tools/train/train.py [--data build/train] [--out build/train/aligner.pt] [--steps N] ...

Prompt = the `plain` Stream Aligner template rendered for the record and tokenized exactly as salign tokenizes it
(BOS + SentencePiece encoding of the rendered text, by bin/salign tokenize itself); target = the correction's tokens
(those that follow the prompt's in the encoding of prompt + " " + correction) and EOS; an empty correction (a
deleted sentence) is EOS alone. The loss is on the target only, as in the reference SFT. The records of one story
are trained together with forward_packed (model.py), which is exact and saves most of the shared prompt head.

Seeded and single-process; the run is reproducible on one machine (same PyTorch, same thread count).
"""
import argparse
import json
import math
import os
import random
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import EOS, ROOT, render, tokenize  # noqa: E402
from model import Aligner, Config  # noqa: E402


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def prepare(records, salign=None):
    """Records -> per story: trunk ids, and per record (segment ids, lcp, first scored index)."""
    prompts = [render(r) for r in records]
    fulls = [p + " " + r["correction"] if r["correction"] else p for p, r in zip(prompts, records)]
    ids_p = tokenize(prompts, salign=salign)
    ids_f = tokenize(fulls, salign=salign)
    bad = 0
    seqs = []
    for p, f, r in zip(ids_p, ids_f, records):
        if f[:len(p)] != p:  # the prompt's encoding must be a prefix of prompt + correction's
            bad += 1
            f = p + f[len(p):]
        seqs.append((f + [EOS], len(p), r["correction"] != r["last"]))
    stories = {}
    for r, s in zip(records, seqs):
        stories.setdefault(r["story"], []).append(s)
    out = []
    for key in sorted(stories):
        recs = stories[key]
        T = recs[-1][0]
        segs = []
        for seq, n_p, changed in recs:
            lcp = 0
            while lcp < min(len(seq), len(T)) and seq[lcp] == T[lcp]:
                lcp += 1
            lcp = min(lcp, n_p - 1)  # the segment starts at or before the last prompt token
            segs.append((seq[lcp:], lcp, n_p - 1 - lcp, changed))
        trunk = T[:max(s[1] for s in segs)]
        out.append({"trunk": trunk, "segs": segs})
    return out, bad


def make_batch(stories, chunk=24):
    """Tensors for forward_packed: the trunks, and the segments sorted by length in chunks of `chunk`, each with
    its targets (-100 where not scored) and its segments' real lengths."""
    S = len(stories)
    Lt = max(1, max(len(s["trunk"]) for s in stories))
    trunk = torch.zeros(S, Lt, dtype=torch.long)
    for i, s in enumerate(stories):
        trunk[i, :len(s["trunk"])] = torch.tensor(s["trunk"], dtype=torch.long)
    segs = sorted(((i, g) for i, s in enumerate(stories) for g in s["segs"]), key=lambda x: (len(x[1][0]), x[1][1]))
    chunks, tgts, lens = [], [], []
    for k in range(0, len(segs), chunk):
        part = segs[k:k + chunk]
        N, Ls = len(part), max(len(g[0]) for _, g in part)
        seg = torch.zeros(N, Ls, dtype=torch.long)
        tgt = torch.full((N, Ls), -100, dtype=torch.long)
        story = torch.zeros(N, dtype=torch.long)
        lcp = torch.zeros(N, dtype=torch.long)
        for j, (i, (ids, l, first, _)) in enumerate(part):
            seg[j, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            # position k predicts ids[k + 1]; scored from the last prompt token on
            tgt[j, first:len(ids) - 1] = torch.tensor(ids[first + 1:], dtype=torch.long)
            story[j], lcp[j] = i, l
        chunks.append((seg, story, lcp))
        tgts.append(tgt)
        lens.append([len(g[0]) for _, g in part])
    return trunk, chunks, tgts, lens


def packed_logits_targets(model, stories):
    trunk, chunks, tgts, _ = make_batch(stories)
    outs = model.forward_packed(trunk, chunks)
    return outs, tgts


def subsample(story, keep, rng):
    """The story with each record the teacher copies kept with probability `keep` (changed ones always)."""
    if keep >= 1.0:
        return story
    segs = [g for g in story["segs"] if g[3] or rng.random() < keep]
    if not segs:
        segs = [story["segs"][rng.randrange(len(story["segs"]))]]
    return {"trunk": story["trunk"][:max(g[1] for g in segs)], "segs": segs}


def batches(data, per_batch, rng, keep=1.0):
    order = list(range(len(data)))
    rng.shuffle(order)
    for k in range(0, len(order) - per_batch + 1, per_batch):
        yield [subsample(data[i], keep, rng) for i in order[k:k + per_batch]]


@torch.no_grad()
def evaluate(model, data, per_batch=16):
    """Token loss, and the share of records whose every target token is the argmax under teacher forcing - which
    is exactly the share a greedy decoder reproduces."""
    model.eval()
    tot_loss = tot_tok = exact = n = 0
    for k in range(0, len(data), per_batch):
        for logits, tgt in zip(*packed_logits_targets(model, data[k:k + per_batch])):
            m = tgt >= 0
            tot_loss += F.cross_entropy(logits[m], tgt[m], reduction="sum").item()
            tot_tok += m.sum().item()
            ok = (logits.argmax(-1) == tgt) | ~m
            exact += ok.all(1).sum().item()
            n += len(tgt)
    model.train()
    return tot_loss / max(tot_tok, 1), exact / max(n, 1)


def lr_at(step, steps, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "build", "train"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "train", "aligner.pt"))
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--stories-per-batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--copy-keep", type=float, default=1.0,
                    help="train on each record the teacher copies with this probability (changed ones always)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--eval-stories", type=int, default=60)
    ap.add_argument("--limit-stories", type=int, default=None)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    train = prepare(load_jsonl(os.path.join(a.data, "records-train.jsonl")))
    test = prepare(load_jsonl(os.path.join(a.data, "records-test-repeats.jsonl")))
    if train[1] or test[1]:
        print("warning: %d + %d records whose prompt encoding is not a prefix of prompt + correction's" % (
            train[1], test[1]), flush=True)
    train, test = train[0], test[0]
    if a.limit_stories:
        train = train[:a.limit_stories]
    test = test[:a.eval_stories]
    n_tok = sum(len(s["trunk"]) + sum(len(g[0]) for g in s["segs"]) for s in train)
    n_rec = sum(len(s["segs"]) for s in train)
    print("data: %d train stories (%d records, %d packed tokens), %d eval stories; prepared in %.0f s" % (
        len(train), n_rec, n_tok, len(test), time.time() - t0), flush=True)

    c = Config(a.dim, a.layers, a.heads, a.kv_heads, a.hidden, 512, a.seq_len)
    model = Aligner(c)
    print("model: %s, %d parameters" % (c.as_dict(), sum(p.numel() for p in model.parameters())), flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95))
    rng = random.Random(a.seed)
    step, epoch, t_train, c_train = 0, 0, time.time(), time.process_time()
    run_loss = None
    while step < a.steps:
        for b in batches(train, a.stories_per_batch, rng, a.copy_keep):
            if step >= a.steps:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, a.steps, a.lr, a.warmup)
            outs, tgts = packed_logits_targets(model, b)
            logits = torch.cat([o[t >= 0] for o, t in zip(outs, tgts)])
            loss = F.cross_entropy(logits, torch.cat([t[t >= 0] for t in tgts]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
            if step % 50 == 0:
                print("step %d epoch %d loss %.4f lr %.2e %.0f s (cpu %.0f s)" % (
                    step, epoch, run_loss, opt.param_groups[0]["lr"], time.time() - t_train,
                    time.process_time() - c_train), flush=True)
            if step % a.eval_every == 0 or step == a.steps:
                vl, ex = evaluate(model, test)
                print("eval step %d: loss %.4f, exact %.1f%% (%.0f s)" % (step, vl, 100 * ex, time.time() - t_train),
                      flush=True)
        epoch += 1
    secs, cpu = time.time() - t_train, time.process_time() - c_train
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save({"config": c.as_dict(), "model": model.state_dict(), "args": vars(a), "train_seconds": secs,
                "train_cpu_seconds": cpu, "steps": step, "epochs": epoch}, a.out)
    print("trained %d steps (%d epochs started) in %.0f s wall, %.0f s cpu; saved %s" % (step, epoch, secs, cpu, a.out),
          flush=True)


if __name__ == "__main__":
    main()
