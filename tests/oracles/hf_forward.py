"""hf_forward.py - teacher-forced logits of a Hugging Face checkpoint directory, computed with PyTorch
from the published modelling semantics of each architecture, reading config.json and the
safetensors files directly (no transformers, no salign code): the reference tests/test_hf_torch.c
compares salign's import of the same directory with.

Architectures (config.json "model_type"), as the HF modelling code defines them:
  llama    RMSNorm x / rms(x) * w; rotate-half RoPE on unpermuted q/k (inv_freq = theta^(-2i/d)),
           rope_scaling "llama3" (low/high frequency factors, smooth interpolation between them)
           and "linear" (inv_freq / factor); grouped-query attention; SiLU-gated MLP; tied or
           separate lm_head
  mistral  as llama (its sliding window only matters past the window; the test stays inside it)
  qwen2    as llama plus biases on q_proj, k_proj, v_proj
  gemma    embeddings x sqrt(hidden) (the factor in the activations' dtype), RMSNorm x / rms(x) * (1 + w)
           in float32, GELU (tanh approximation) gated MLP, head_dim from config, tied lm_head
  gemma2   gemma plus: attention scaled by query_pre_attn_scalar^-1/2, attention logits soft-capped
           (tanh(s / c) * c), post-attention and pre/post-feed-forward norms, a sliding window on
           even layers (position i sees j with i - j < window), final logits soft-capped
Score models (config.json "architectures" LlamaForScore / LlamaModelForScore, safe-rlhf's score models
as in PKU-Alignment's beaver reward/cost checkpoints): the llama body, then instead of lm_head
score_head = Linear(hidden_size, score_dim, bias=config "bias") on the final normed hidden states; the
output rows hold the scores (score_dim columns; the end score is the last row's). Its normalizer is left
out: it only applies with do_normalize.
Everything in float32.

usage: hf_forward.py IDS_FILE HF_DIR OUT_FILE [HF_DIR OUT_FILE ...]
  IDS_FILE: token ids, whitespace-separated. OUT_FILE: float32 logits, row-major [n_ids x vocab] (a score
  model: [n_ids x score_dim] scores)."""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path, into):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":  # the upper half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        into[name] = torch.from_numpy(arr.astype(np.float32).reshape(info["shape"]))


def load_weights(d):
    w = {}
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        for fn in sorted(set(json.load(open(index))["weight_map"].values())):
            read_safetensors(os.path.join(d, fn), w)
    else:
        read_safetensors(os.path.join(d, "model.safetensors"), w)
    return w


def inv_freqs(cfg, dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        inv = inv / float(rs["factor"])
    elif kind == "llama3":
        factor, lo, hi = float(rs["factor"]), float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
        old = float(rs["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        inv = torch.where(medium, smoothed, scaled)
    elif kind not in (None, "default"):
        raise SystemExit("rope_scaling %r: not implemented in the oracle" % kind)
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(d, ids):
    cfg = json.load(open(os.path.join(d, "config.json")))
    w = load_weights(d)
    arch = cfg["model_type"]
    gemma = arch in ("gemma", "gemma2")
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or H // nh
    eps = float(cfg["rms_norm_eps"])
    T = len(ids)

    def norm(x, name):
        x = x.float()
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        g = w[name]
        return y * (1.0 + g) if gemma else y * g

    def lin(x, name, bias=False):
        y = x @ w[name + ".weight"].T
        if bias and (name + ".bias") in w:
            y = y + w[name + ".bias"]
        return y

    if gemma:
        act = lambda t: torch.nn.functional.gelu(t, approximate="tanh")  # noqa: E731
    else:
        act = torch.nn.functional.silu
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    if gemma:
        x = x * torch.tensor(H ** 0.5, dtype=x.dtype)
    inv = inv_freqs(cfg, hd)
    freqs = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    scale = (float(cfg["query_pre_attn_scalar"]) ** -0.5) if arch == "gemma2" else hd ** -0.5
    attn_cap = cfg.get("attn_logit_softcapping") if arch == "gemma2" else None
    final_cap = cfg.get("final_logit_softcapping") if arch == "gemma2" else None
    window = cfg.get("sliding_window") if arch == "gemma2" else None
    pos = torch.arange(T)
    causal = pos[None, :] <= pos[:, None]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = norm(x, p + "input_layernorm.weight")
        q = lin(h, p + "self_attn.q_proj", True).view(T, nh, hd).transpose(0, 1)
        k = lin(h, p + "self_attn.k_proj", True).view(T, nkv, hd).transpose(0, 1)
        v = lin(h, p + "self_attn.v_proj", True).view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        s = (q @ k.transpose(1, 2)) * scale
        if attn_cap:
            s = torch.tanh(s / attn_cap) * attn_cap
        allowed = causal
        if window and i % 2 == 0:
            allowed = allowed & (pos[:, None] - pos[None, :] < window)
        s = s.masked_fill(~allowed, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v
        a = lin(a.transpose(0, 1).reshape(T, nh * hd), p + "self_attn.o_proj")
        if arch == "gemma2":
            a = norm(a, p + "post_attention_layernorm.weight")
            x = x + a
            h = norm(x, p + "pre_feedforward_layernorm.weight")
        else:
            x = x + a
            h = norm(x, p + "post_attention_layernorm.weight")
        m = lin(act(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        if arch == "gemma2":
            m = norm(m, p + "post_feedforward_layernorm.weight")
        x = x + m
    x = norm(x, "model.norm.weight")
    if any(a.endswith("ForScore") for a in cfg.get("architectures", [])):
        scores = x @ w["score_head.weight"].T
        if cfg.get("bias", False):
            scores = scores + w["score_head.bias"]
        return scores
    out = w["lm_head.weight"] if "lm_head.weight" in w and not cfg.get("tie_word_embeddings", gemma) else \
        w["model.embed_tokens.weight"]
    logits = x @ out.T
    if final_cap:
        logits = torch.tanh(logits / final_cap) * final_cap
    return logits


def main():
    torch.set_num_threads(1)
    ids = [int(t) for t in open(sys.argv[1]).read().split()]
    args = sys.argv[2:]
    with torch.no_grad():
        for d, out in zip(args[0::2], args[1::2]):
            logits = forward(d, ids).contiguous().numpy().astype(np.float32)
            logits.tofile(out)
            print("%s: %d x %d logits" % (d, logits.shape[0], logits.shape[1]))


if __name__ == "__main__":
    main()
