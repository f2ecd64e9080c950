"""model.py - the demo aligner: a small Llama (llama2.c's model, as salign runs it) and its llama2.c export.

Forward pass = salign's for a llama2.c checkpoint: RMSNorm (eps 1e-5, weight * x / rms), RoPE on adjacent pairs
(x[2j], x[2j+1]) with theta 10000, grouped-query attention, SwiGLU feed-forward (w2(silu(w1 x) * w3 x)), the
classifier shared with the token embedding.

Besides the plain causal forward (forward()), forward_packed() runs many Stream Aligner records of one story at
once: the records share the story's prompt head ("##Question: Q | ##Answer_Prefix: P..."), so the head is run once
as a "trunk" and each record's own tokens (a "segment") attend to the first lcp tokens of the trunk and causally to
themselves, at the positions they have in the record. That is exactly the record's own causal forward pass (checked
by tests/run-train-smoke.sh), for about 40% of the tokens.
"""
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-5
ROPE_THETA = 10000.0


class Config:
    def __init__(self, dim=128, n_layers=4, n_heads=4, n_kv_heads=2, hidden_dim=384, vocab_size=512, seq_len=1024):
        self.dim, self.n_layers, self.n_heads, self.n_kv_heads = dim, n_layers, n_heads, n_kv_heads
        self.hidden_dim, self.vocab_size, self.seq_len = hidden_dim, vocab_size, seq_len

    def as_dict(self):
        return dict(self.__dict__)


def rmsnorm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * w


def rope(x, pos):
    """x (..., T, H, hd), pos (..., T) integer positions: rotate adjacent pairs."""
    hd = x.shape[-1]
    inv = 1.0 / (ROPE_THETA ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = pos.to(torch.float64).unsqueeze(-1) * inv                     # (..., T, hd/2)
    cos = torch.cos(ang).to(x.dtype).unsqueeze(-2)                      # (..., T, 1, hd/2)
    sin = torch.sin(ang).to(x.dtype).unsqueeze(-2)
    xr = x.reshape(*x.shape[:-1], hd // 2, 2)
    a, b = xr[..., 0], xr[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).reshape(x.shape)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c.n_heads, c.n_kv_heads, c.dim // c.n_heads
        d = c.dim
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.wv = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.w1 = nn.Linear(d, c.hidden_dim, bias=False)
        self.w2 = nn.Linear(c.hidden_dim, d, bias=False)
        self.w3 = nn.Linear(d, c.hidden_dim, bias=False)
        self.attention_norm = nn.Parameter(torch.ones(d))
        self.ffn_norm = nn.Parameter(torch.ones(d))

    def qkv(self, x, pos):
        """q (B, H, T, hd) pre-scaled by 1/sqrt(hd); k, v (B, H, T, hd) with the KV heads repeated."""
        B, T, _ = x.shape
        h = rmsnorm(x, self.attention_norm)
        q = rope(self.wq(h).view(B, T, self.nh, self.hd), pos).transpose(1, 2) * (1.0 / math.sqrt(self.hd))
        k = rope(self.wk(h).view(B, T, self.nkv, self.hd), pos).transpose(1, 2)
        v = self.wv(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        rep = self.nh // self.nkv
        if rep > 1:
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        return q, k, v

    def finish(self, x, o):
        B, H, T, hd = o.shape
        x = x + self.wo(o.transpose(1, 2).reshape(B, T, H * hd))
        h = rmsnorm(x, self.ffn_norm)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Aligner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = nn.Parameter(torch.ones(c.dim))
        nn.init.normal_(self.tok_embeddings.weight, std=0.02)
        for n, p in self.named_parameters():
            if p.dim() == 2 and "tok_embeddings" not in n:
                std = 0.02 / math.sqrt(2 * c.n_layers) if n.endswith(("wo.weight", "w2.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def logits(self, h):
        return rmsnorm(h, self.norm) @ self.tok_embeddings.weight.t()

    def forward(self, ids):
        """Plain causal forward: ids (B, T) at positions 0..T-1 -> logits (B, T, V)."""
        B, T = ids.shape
        pos = torch.arange(T).expand(B, T)
        x = self.tok_embeddings(ids)
        mask = torch.full((T, T), float("-inf")).triu(1)
        for L in self.layers:
            q, k, v = L.qkv(x, pos)
            o = ((q @ k.transpose(-1, -2)) + mask).softmax(-1) @ v
            x = L.finish(x, o)
        return self.logits(x)

    def forward_packed(self, trunk, chunks):
        """trunk (S, Lt): token ids of S stories' shared heads. chunks: a list of (seg, story, lcp), each seg (N, Ls)
        records' own tokens (padded at the end), story (N,) the story of each, lcp (N,) how many trunk tokens it
        continues. Grouping segments of similar length into chunks keeps the padding small.
        -> a list of logits (N, Ls, V), one per chunk."""
        S, Lt = trunk.shape
        tpos = torch.arange(Lt).expand(S, Lt)
        tmask = torch.full((Lt, Lt), float("-inf")).triu(1)
        xt = self.tok_embeddings(trunk)
        cs = []
        for seg, story, lcp in chunks:
            N, Ls = seg.shape
            Lc = max(1, int(lcp.max()))  # trunk columns this chunk can see
            # segment -> trunk: column j visible when j < lcp; segment -> segment: causal
            m_tr = torch.where(torch.arange(Lc).unsqueeze(0) < lcp.unsqueeze(1), 0.0, float("-inf"))
            m_ss = torch.full((Ls, Ls), float("-inf")).triu(1)
            mask = torch.cat((m_tr[:, None, None, :].expand(N, 1, Ls, Lc), m_ss[None, None].expand(N, 1, Ls, Ls)), -1)
            cs.append([self.tok_embeddings(seg), lcp.unsqueeze(1) + torch.arange(Ls).unsqueeze(0), story, Lc, mask])
        for L in self.layers:
            qt, kt, vt = L.qkv(xt, tpos)
            for c in cs:
                xs, spos, story, Lc, mask = c
                qs, ks, vs = L.qkv(xs, spos)
                k = torch.cat((kt[story, :, :Lc], ks), 2)
                v = torch.cat((vt[story, :, :Lc], vs), 2)
                c[0] = L.finish(xs, ((qs @ k.transpose(-1, -2)) + mask).softmax(-1) @ v)
            xt = L.finish(xt, ((qt @ kt.transpose(-1, -2)) + tmask).softmax(-1) @ vt)
        return [self.logits(c[0]) for c in cs]


def export_llama2c(model, path):
    """llama2.c version 1 ("ak42") checkpoint, fp32, shared classifier (karpathy/llama2.c export.py layout)."""
    c = model.c
    with open(path, "wb") as f:
        f.write(struct.pack("I", 0x616B3432))
        f.write(struct.pack("i", 1))
        f.write(struct.pack("iiiiiii", c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
                            c.seq_len))
        f.write(struct.pack("B", 1))
        f.write(b"\0" * (256 - f.tell()))
        ws = [L.attention_norm for L in model.layers] + [L.ffn_norm for L in model.layers] + [model.norm,
                                                                                                model.tok_embeddings.weight]
        for name in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
            ws += [getattr(L, name).weight for L in model.layers]
        for w in ws:
            f.write(w.detach().to(torch.float32).contiguous().numpy().tobytes())
