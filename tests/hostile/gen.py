#!/usr/bin/env python3
"""gen.py OUTDIR - write the hostile-input corpus (tests/hostile/README.md) and its manifest.

Every file is derived from a tiny but *valid* model built here from scratch (no downloads, no
shared models), so each hostile variant differs from a file salign accepts by exactly the defect
it is named after. Structured formats (GGUF, .salm, llama2.c, safetensors) are built from a
description and then serialized, so a defect deep inside the file is reached: e.g. a .salm whose
tensor table is wrong still gets a correct header crc32, otherwise every variant would stop at the
crc check and the later checks would go untested.

OUTDIR/manifest.tsv has one line per case:
    name <TAB> kind <TAB> path <TAB> extra <TAB> expect
kind: q (salign-quantize INPUT OUT --type f32 [extra]), info (salign info FILE [extra]),
      gen (salign generate -m FILE ...), tok (salign tokenize --tokenizer FILE),
      eval (salign eval --upstream stories260K --in FILE: a dataset),
      hf (salign-quantize DIR OUT --type f32; only once HF directories are supported).
expect: a case-insensitive substring the one-line error must contain ("|" separates
alternatives), i.e. what the message has to name. Cases named ok-* are the valid baselines and
must succeed. Deterministic: the same corpus on every run.
"""
import json
import math
import os
import random
import struct
import sys
import zlib

OUT = sys.argv[-1] if len(sys.argv) > 1 else "build/hostile"
MANIFEST = []

# ---- the tiny model -------------------------------------------------------------------------
V_PIECES = ["\u2581", "\u2581a", "\u2581b", "\u2581the", "\u2581cat", "at", "he", "th", "\u2581s", "s",
            "a", "b", "c", "t", "h", "e", "\u2581c", "\u2581t", "\u2581h", "ca", "\u2581ca", "o", "n",
            "\u2581o", "\u2581on", "on", "x", "y", "z"]
TOKENS = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + V_PIECES
V = len(TOKENS)            # 288
E, L, H, HKV, F, CTX = 32, 2, 4, 2, 64, 64
HD = E // H
SCORES = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(V_PIECES))]
TYPES = [2, 3, 3] + [6] * 256 + [1] * len(V_PIECES)

rng = random.Random(20240607)


def randf(n):
    return [rng.uniform(-0.1, 0.1) for _ in range(n)]


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def llama_tensors(tied=False):
    """(name, ne, f32 values) in llama.cpp naming; ne[0] = row length."""
    kv = HKV * HD
    t = [("token_embd.weight", [E, V], randf(E * V)), ("output_norm.weight", [E], [1.0] * E)]
    if not tied:
        t.append(("output.weight", [E, V], randf(E * V)))
    for l in range(L):
        p = "blk.%d." % l
        t += [(p + "attn_norm.weight", [E], [1.0] * E), (p + "attn_q.weight", [E, H * HD], randf(E * H * HD)),
              (p + "attn_k.weight", [E, kv], randf(E * kv)), (p + "attn_v.weight", [E, kv], randf(E * kv)),
              (p + "attn_output.weight", [H * HD, E], randf(H * HD * E)), (p + "ffn_norm.weight", [E], [1.0] * E),
              (p + "ffn_gate.weight", [E, F], randf(E * F)), (p + "ffn_up.weight", [E, F], randf(E * F)),
              (p + "ffn_down.weight", [F, E], randf(F * E))]
    return t


TENSORS = llama_tensors()


def case(name, kind, path, extra, expect):
    MANIFEST.append((name, kind, os.path.relpath(path, OUT), extra or "-", expect))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- GGUF -------------------------------------------------------------------------------------
G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 = range(13)
SCALAR_FMT = {G_U8: "<B", G_I8: "<b", G_U16: "<H", G_I16: "<h", G_U32: "<I", G_I32: "<i", G_F32: "<f",
              G_BOOL: "<B", G_U64: "<Q", G_I64: "<q", G_F64: "<d"}


def gstr(s):
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(typ, val, arr_type=None):
    if typ == G_STR:
        return gstr(val)
    if typ == G_ARR:
        out = struct.pack("<IQ", arr_type, len(val))
        for v in val:
            out += gval(arr_type, v)
        return out
    return struct.pack(SCALAR_FMT[typ], val)


def gguf_kvs():
    return [
        ["general.architecture", G_STR, "llama"],
        ["general.name", G_STR, "hostile-tiny"],
        ["llama.embedding_length", G_U32, E],
        ["llama.block_count", G_U32, L],
        ["llama.attention.head_count", G_U32, H],
        ["llama.attention.head_count_kv", G_U32, HKV],
        ["llama.feed_forward_length", G_U32, F],
        ["llama.context_length", G_U32, CTX],
        ["llama.rope.freq_base", G_F32, 10000.0],
        ["llama.attention.layer_norm_rms_epsilon", G_F32, 1e-5],
        ["tokenizer.ggml.model", G_STR, "llama"],
        ["tokenizer.ggml.tokens", G_ARR, list(TOKENS), G_STR],
        ["tokenizer.ggml.scores", G_ARR, list(SCORES), G_F32],
        ["tokenizer.ggml.token_type", G_ARR, list(TYPES), G_I32],
        ["tokenizer.ggml.bos_token_id", G_U32, 1],
        ["tokenizer.ggml.eos_token_id", G_U32, 2],
    ]


def gguf_tensors():
    # [name, ne, ggml type, data bytes, offset override (None = laid out)]
    return [[n, list(ne), 0, f32(v), None] for n, ne, v in TENSORS]


def gguf_build(kvs=None, tensors=None, magic=b"GGUF", version=3, n_tensors=None, n_kv=None, align=32,
               raw_kv=None):
    kvs = gguf_kvs() if kvs is None else kvs
    tensors = gguf_tensors() if tensors is None else tensors
    out = magic + struct.pack("<I", version)
    out += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    for kv in kvs:
        out += gstr(kv[0]) + struct.pack("<I", kv[1]) + gval(kv[1], kv[2], kv[3] if len(kv) > 3 else None)
    if raw_kv:
        out += raw_kv
    off = 0
    offsets = []
    for t in tensors:
        o = off if t[4] is None else t[4]
        offsets.append(o)
        off = (off + len(t[3]) + align - 1) // align * align
        out += gstr(t[0]) + struct.pack("<I", len(t[1])) + b"".join(struct.pack("<Q", d) for d in t[1])
        out += struct.pack("<IQ", t[2], o)
    out += b"\0" * ((-len(out)) % align)
    data = bytearray()
    for t, o in zip(tensors, offsets):
        if t[4] is not None:
            continue
        data += b"\0" * (o - len(data)) + t[3]
    return bytes(out) + bytes(data)


def set_kv(kvs, key, typ, val, arr_type=None):
    for kv in kvs:
        if kv[0] == key:
            kv[1:] = [typ, val] + ([arr_type] if arr_type is not None else [])
            return kvs
    kvs.append([key, typ, val] + ([arr_type] if arr_type is not None else []))
    return kvs


def del_kv(kvs, key):
    return [kv for kv in kvs if kv[0] != key]


def find_t(ts, name):
    return next(t for t in ts if t[0] == name)


def gen_gguf():
    d = os.path.join(OUT, "gguf")

    def g(name, data, expect, extra=None):
        p = os.path.join(d, name + ".gguf")
        write(p, data)
        case("gguf-" + name, "q", p, extra, expect)
        # the runtime takes GGUFs too (converted in memory as --type keep): the same file through
        # `salign generate` must fail, or succeed, the same way
        if extra is None:
            case("gguf-gen-" + name, "gen", p, None, expect)

    base = gguf_build()
    g("ok-base", base, "")
    g("ok-q8_0", base, "", "--type q8_0")
    hdr_end = base.index(b"token_embd.weight")  # start of the tensor infos (first name)
    # truncated at many points: header, metadata, tensor infos, data
    cuts = [0, 3, 4, 7, 12, 23, 24, 40, 60, 200, 1000, 3000, hdr_end - 9, hdr_end + 5, hdr_end + 300,
            len(base) - len(base) // 2, len(base) - 100, len(base) - 1]
    for c in sorted(set(cuts)):
        g("trunc-%06d" % c, base[:c], "truncated|too small|empty|past the end|impossible|does not fit|unrecognised input")
    g("magic-GGUX", b"GGUX" + base[4:], "bad magic|unrecognised input|not a .salm or GGUF model file")
    g("magic-zero", b"\0\0\0\0" + base[4:], "bad magic|unrecognised input|not a .salm or GGUF model file")
    g("version-1", gguf_build(version=1), "version 1")
    g("version-4", gguf_build(version=4), "version 4")
    g("version-max", gguf_build(version=0xFFFFFFFF), "version 4294967295")
    g("version-bigendian", gguf_build(version=0x03000000), "big-endian")
    g("ntensors-huge", gguf_build(n_tensors=1 << 62), "tensor count")
    g("nkv-huge", gguf_build(n_kv=(1 << 64) - 1), "metadata count")
    g("nkv-too-many", gguf_build(n_kv=len(gguf_kvs()) + 1), "truncated|invalid metadata type|metadata")
    # metadata entries
    g("key-len-huge", gguf_build(kvs=[], n_kv=1, raw_kv=struct.pack("<Q", (1 << 64) - 2) + b"k"),
      "truncated")
    g("key-empty", gguf_build(kvs=[["", G_U32, 1]] + gguf_kvs()), "empty metadata key")
    g("key-nul", gguf_build(kvs=[["a\0b", G_U32, 1]] + gguf_kvs()), "NUL")
    g("key-duplicate", gguf_build(kvs=gguf_kvs() + [["llama.block_count", G_U32, 2]]), "duplicate metadata key")
    g("kv-type-13", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<I", 13)), "invalid metadata type 13")
    g("kv-type-max", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<II", 0xFFFFFFFF, 0)),
      "invalid metadata type")
    g("str-len-past-eof", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<IQ", G_STR, 1 << 40)),
      "truncated")
    g("arr-nested", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<IIQ", G_ARR, G_ARR, 1)),
      "nested arrays")
    g("arr-elem-type-bad", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<IIQ", G_ARR, 77, 1)),
      "invalid array element type")
    g("arr-len-overflow", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<IIQ", G_ARR, G_U64, 1 << 62)),
      "too large|truncated")
    g("arr-str-count-huge", gguf_build(kvs=[], n_kv=1, raw_kv=gstr("x") + struct.pack("<IIQ", G_ARR, G_STR, 1 << 60)),
      "does not fit")
    g("bool-2", gguf_build(kvs=gguf_kvs() + [["x.flag", G_BOOL, 2]]), "bool")
    g("bool-arr-3", gguf_build(kvs=gguf_kvs() + [["x.flags", G_ARR, [0, 1, 3], G_BOOL]]), "bool element")
    g("alignment-0", gguf_build(kvs=gguf_kvs() + [["general.alignment", G_U32, 0]]), "alignment")
    g("alignment-3", gguf_build(kvs=gguf_kvs() + [["general.alignment", G_U32, 3]]), "not a power of two")
    g("alignment-string", gguf_build(kvs=gguf_kvs() + [["general.alignment", G_STR, "32"]]), "general.alignment")

    # tensor infos
    def tmod(fn):
        ts = gguf_tensors()
        fn(ts)
        return ts

    def nd(ts, name, dims):
        find_t(ts, name)[1] = dims

    g("tensor-ndims-0", gguf_build(tensors=tmod(lambda ts: nd(ts, "output_norm.weight", []))), "dimensions")
    g("tensor-ndims-5", gguf_build(tensors=tmod(lambda ts: nd(ts, "output_norm.weight", [E, 1, 1, 1, 1]))),
      "dimensions")
    g("tensor-dim-0", gguf_build(tensors=tmod(lambda ts: nd(ts, "blk.0.attn_q.weight", [E, 0]))), "dimension 1 is 0")
    g("tensor-dim-huge", gguf_build(tensors=tmod(lambda ts: nd(ts, "blk.0.attn_q.weight", [E, 1 << 63]))),
      "dimension 1 is")
    g("tensor-nel-overflow",
      gguf_build(tensors=tmod(lambda ts: nd(ts, "blk.0.attn_q.weight", [1 << 32, 1 << 32, 1 << 32]))),
      "overflows")
    g("tensor-bytes-overflow",
      gguf_build(tensors=tmod(lambda ts: nd(ts, "blk.0.attn_q.weight", [1 << 31, 1 << 31, 4]))),
      "overflows|past the end")

    def ttype(ts, name, typ):
        find_t(ts, name)[2] = typ

    g("tensor-type-99", gguf_build(tensors=tmod(lambda ts: ttype(ts, "blk.0.attn_k.weight", 99))),
      "unknown ggml type 99")
    # block types salign runs, on a 32-wide matrix: the super-block types do not fit
    for typ, name in [(12, "q4_K"), (13, "q5_K"), (14, "q6_K"), (10, "q2_K"), (11, "q3_K"), (23, "iq4_xs")]:
        g("tensor-type-" + name, gguf_build(tensors=tmod(lambda ts, t=typ: ttype(ts, "blk.0.attn_k.weight", t))),
          "not a multiple of the %s block size 256" % name)
    # types salign does not run (activation-only, IQ1/IQ2/IQ3, ternary, FP4): refused by name
    for typ, name in [(15, "q8_K"), (9, "q8_1"), (16, "iq2_xxs"), (19, "iq1_s"), (21, "iq3_s"), (34, "tq1_0"),
                      (39, "mxfp4")]:
        g("tensor-type-" + name, gguf_build(tensors=tmod(lambda ts, t=typ: ttype(ts, "blk.0.attn_k.weight", t))),
          "blk.0.attn_k.weight: type %s is not supported by salign" % name)
    # ids ggml removed from GGUF (the old repacked Q4_0 / IQ4_NL layouts)
    for typ, name in [(31, "q4_0_4_4"), (32, "q4_0_4_8"), (33, "q4_0_8_8"), (36, "iq4_nl_4_4"), (37, "iq4_nl_4_8"),
                      (38, "iq4_nl_8_8")]:
        g("tensor-type-removed-%d" % typ,
          gguf_build(tensors=tmod(lambda ts, t=typ: ttype(ts, "blk.0.attn_k.weight", t))),
          "blk.0.attn_k.weight: type %d (%s) was removed from GGUF" % (typ, name))

    # the last tensor in each block type, one byte short of its size
    def short_last(typ, block, block_bytes):
        def fn(ts):
            t = ts[-1]
            t[1] = [256, 4]
            t[2] = typ
            t[3] = bytes(4 * 256 // block * block_bytes - 1)
        return fn
    for typ, name, block, bb in [(2, "q4_0", 32, 18), (3, "q4_1", 32, 20), (6, "q5_0", 32, 22), (7, "q5_1", 32, 24),
                                 (8, "q8_0", 32, 34), (12, "q4_K", 256, 144), (13, "q5_K", 256, 176),
                                 (14, "q6_K", 256, 210), (10, "q2_K", 256, 84), (11, "q3_K", 256, 110),
                                 (20, "iq4_nl", 32, 18), (23, "iq4_xs", 256, 136)]:
        g("tensor-short-" + name, gguf_build(tensors=tmod(short_last(typ, block, bb))), "past the end")
    g("tensor-type-max", gguf_build(tensors=tmod(lambda ts: ttype(ts, "blk.0.attn_k.weight", 0xFFFFFFFF))),
      "unknown ggml type")

    def q80_odd(ts):
        t = find_t(ts, "output_norm.weight")
        t[1] = [33]
        t[2] = 8
    g("tensor-block-misfit", gguf_build(tensors=tmod(q80_odd)), "not a multiple")

    def iq4nl_odd(ts):  # IQ4_NL has 32-weight blocks: a 48-wide row does not fit
        t = find_t(ts, "output_norm.weight")
        t[1] = [48]
        t[2] = 20
        t[3] = bytes(36)
    g("tensor-block-misfit-iq4_nl", gguf_build(tensors=tmod(iq4nl_odd)), "not a multiple of the iq4_nl block size 32")

    def off(ts, name, o):
        find_t(ts, name)[4] = o
    g("tensor-offset-unaligned", gguf_build(tensors=tmod(lambda ts: off(ts, "output_norm.weight", 8))),
      "alignment")
    g("tensor-offset-past-eof", gguf_build(tensors=tmod(lambda ts: off(ts, "output_norm.weight", 1 << 40))),
      "past the end")
    g("tensor-offset-overflow",
      gguf_build(tensors=tmod(lambda ts: off(ts, "output_norm.weight", (1 << 64) - 32))), "past the end")
    g("tensor-overlap", gguf_build(tensors=tmod(lambda ts: off(ts, "blk.1.attn_q.weight", 0))), "overlap")

    def dup(ts):
        ts[3][0] = ts[2][0]
    g("tensor-name-duplicate", gguf_build(tensors=tmod(dup)), "duplicate tensor name")

    def longname(ts):
        ts[0][0] = "x" * 300
    g("tensor-name-long", gguf_build(tensors=tmod(longname)), "300 bytes long")

    def emptyname(ts):
        ts[0][0] = ""
    g("tensor-name-empty", gguf_build(tensors=tmod(emptyname)), "empty tensor name")

    # model-level metadata
    g("arch-missing", gguf_build(kvs=del_kv(gguf_kvs(), "general.architecture")), "general.architecture")
    g("arch-unknown", gguf_build(kvs=set_kv(gguf_kvs(), "general.architecture", G_STR, "bert\x01")),
      "not supported")
    g("arch-wrong-type", gguf_build(kvs=set_kv(gguf_kvs(), "general.architecture", G_U32, 7)),
      "general.architecture")
    g("hp-head-count-0", gguf_build(kvs=set_kv(gguf_kvs(), "llama.attention.head_count", G_U32, 0)),
      "head_count")
    g("hp-head-count-5", gguf_build(kvs=set_kv(set_kv(gguf_kvs(), "llama.attention.head_count", G_U32, 5),
                                               "llama.attention.head_count_kv", G_U32, 5)),
      "not a multiple of the head count")
    g("hp-head-kv-3", gguf_build(kvs=set_kv(gguf_kvs(), "llama.attention.head_count_kv", G_U32, 3)),
      "n_head_kv")
    g("hp-embd-huge", gguf_build(kvs=set_kv(gguf_kvs(), "llama.embedding_length", G_U64, 1 << 40)),
      "embedding_length")
    g("hp-embd-negative", gguf_build(kvs=set_kv(gguf_kvs(), "llama.embedding_length", G_I32, -32)),
      "embedding_length")
    g("hp-layers-huge", gguf_build(kvs=set_kv(gguf_kvs(), "llama.block_count", G_U32, 1 << 20)),
      "implausibly large")
    g("hp-ff-missing", gguf_build(kvs=del_kv(gguf_kvs(), "llama.feed_forward_length")), "feed_forward_length")
    g("hp-ctx-string", gguf_build(kvs=set_kv(gguf_kvs(), "llama.context_length", G_STR, "64")), "context_length")
    g("hp-eps-negative", gguf_build(kvs=set_kv(gguf_kvs(), "llama.attention.layer_norm_rms_epsilon", G_F32, -1.0)),
      "norm_eps")
    g("hp-theta-nan", gguf_build(kvs=set_kv(gguf_kvs(), "llama.rope.freq_base", G_F32, float("nan"))),
      "rope_theta")
    g("hp-vocab-size-mismatch", gguf_build(kvs=gguf_kvs() + [["llama.vocab_size", G_U32, 100]]),
      "vocab_size")
    # tokenizer metadata
    g("tok-missing", gguf_build(kvs=del_kv(gguf_kvs(), "tokenizer.ggml.model")), "tokenizer")
    g("tok-model-bert", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.model", G_STR, "bert")), "bert")
    g("tok-tokens-not-array", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.tokens", G_STR, "x")),
      "tokenizer.ggml.tokens")
    g("tok-tokens-empty", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.tokens", G_ARR, [], G_STR)),
      "tokenizer.ggml.tokens")
    g("tok-scores-short", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.scores", G_ARR, SCORES[:-1], G_F32)),
      "tokenizer.ggml.scores")
    g("tok-scores-nan", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.scores", G_ARR,
                                              SCORES[:10] + [float("nan")] + SCORES[11:], G_F32)), "NaN score")
    g("tok-type-7", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.token_type", G_ARR,
                                          TYPES[:5] + [7] + TYPES[6:], G_I32)), "token_type")
    g("tok-bos-out-of-range", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.bos_token_id", G_U32, 9999)),
      "bos_token_id")
    bad_utf8 = list(TOKENS)
    bad_utf8[280] = b"\xff\xfe"
    g("tok-bad-utf8", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.tokens", G_ARR, bad_utf8, G_STR)),
      "UTF-8")
    trunc_utf8 = list(TOKENS)
    trunc_utf8[281] = b"\xe2\x96"  # the first two bytes of U+2581
    g("tok-truncated-utf8", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.tokens", G_ARR, trunc_utf8, G_STR)),
      "UTF-8")
    surrogate = list(TOKENS)
    surrogate[282] = b"\xed\xa0\x80"  # an encoded UTF-16 surrogate: not UTF-8
    g("tok-surrogate", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.tokens", G_ARR, surrogate, G_STR)),
      "UTF-8")
    nul_tok = list(TOKENS)
    nul_tok[283] = b"a\0b"
    g("tok-nul", gguf_build(kvs=set_kv(gguf_kvs(), "tokenizer.ggml.tokens", G_ARR, nul_tok, G_STR)), "NUL")
    # tensor set vs hyperparameters
    g("shape-mismatch", gguf_shape_build("blk.0.attn_k.weight", [E, 8]), "blk.0.attn_k.weight")
    g("tensor-missing", gguf_build(tensors=[t for t in gguf_tensors() if t[0] != "blk.1.ffn_down.weight"]),
      "blk.1.ffn_down.weight")
    g("tensor-extra", gguf_build(tensors=gguf_tensors() + [["blk.7.attn_q.weight", [E, E], 0, f32([0.0] * E * E),
                                                            None]]), "blk.7.attn_q.weight")
    g("embd-rows-mismatch", gguf_shape_build("token_embd.weight", [E, V - 1]), "token_embd.weight")
    # NaN / Inf weights cannot be block-quantized: named, with the tensor
    nan_t = gguf_tensors()
    vals = list(struct.unpack("<%df" % (E * H * HD), find_t(nan_t, "blk.0.attn_q.weight")[3]))
    vals[5] = float("nan")
    find_t(nan_t, "blk.0.attn_q.weight")[3] = f32(vals)
    g("nan-weights-q8_0", gguf_build(tensors=nan_t), "blk.0.attn_q.weight", "--type q8_0")
    inf_t = gguf_tensors()
    vals = list(struct.unpack("<%df" % (E * F), find_t(inf_t, "blk.1.ffn_up.weight")[3]))
    vals[77] = float("inf")
    find_t(inf_t, "blk.1.ffn_up.weight")[3] = f32(vals)
    g("inf-weights-q4_0", gguf_build(tensors=inf_t), "blk.1.ffn_up.weight", "--type q4_0")


def gguf_shape(name, ne):
    ts = gguf_tensors()
    t = find_t(ts, name)
    t[1] = ne
    n = 1
    for x in ne:
        n *= x
    t[3] = f32([0.0] * n)
    return ts


def gguf_shape_build(name, ne):
    return gguf_build(tensors=gguf_shape(name, ne))


# ---- .salm ------------------------------------------------------------------------------------
S_U32, S_I32, S_F32, S_STR, S_ARR_STR, S_ARR_F32, S_ARR_I32 = range(7)
DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0 = range(5)


def sstr(s):
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def salm_kvs(tied=False):
    kv = [["arch", S_STR, "llama"]]
    for k, v in [("n_vocab", V), ("n_embd", E), ("n_layer", L), ("n_head", H), ("n_head_kv", HKV), ("head_dim", HD),
                 ("n_ff", F), ("n_ctx_train", CTX)]:
        kv.append(["hp." + k, S_I32, v])
    kv += [["hp.norm_eps", S_F32, 1e-5], ["hp.rope_theta", S_F32, 10000.0], ["hp.rope_pairing", S_I32, 0],
           ["hp.act", S_I32, 0], ["hp.qkv_bias", S_I32, 0], ["hp.tied_output", S_I32, 1 if tied else 0],
           ["tok.model", S_STR, "spm"], ["tok.tokens", S_ARR_STR, list(TOKENS)], ["tok.scores", S_ARR_F32, list(SCORES)],
           ["tok.types", S_ARR_I32, list(TYPES)]]
    for k, v in [("bos_id", 1), ("eos_id", 2), ("unk_id", 0), ("pad_id", -1), ("eot_id", -1), ("add_bos", 1),
                 ("add_eos", 0), ("add_space_prefix", 1)]:
        kv.append(["tok." + k, S_I32, v])
    return kv


def skv_bytes(kv):
    key, typ, val = kv[0], kv[1], kv[2]
    out = sstr(key) + struct.pack("<I", typ)
    if typ == S_U32:
        out += struct.pack("<I", val)
    elif typ == S_I32:
        out += struct.pack("<i", val)
    elif typ == S_F32:
        out += struct.pack("<f", val)
    elif typ == S_STR:
        out += sstr(val)
    elif typ == S_ARR_STR:
        out += struct.pack("<Q", len(val)) + b"".join(sstr(s) for s in val)
    elif typ == S_ARR_F32:
        out += struct.pack("<Q", len(val)) + f32(val)
    elif typ == S_ARR_I32:
        out += struct.pack("<Q", len(val)) + struct.pack("<%di" % len(val), *val)
    else:
        out += val  # raw bytes for unknown types
    return out


def salm_tensors(tied=False):
    # [name, dtype, ne, data, offset override, nbytes override, crc override]
    return [[n, DT_F32, list(ne), f32(v), None, None, None] for n, ne, v in llama_tensors(tied)]


def salm_build(kvs=None, tensors=None, magic=b"SALM", version=1, n_kv=None, n_tensors=None, meta_bytes=None,
               data_offset=None, head_crc=None, reserved=0, raw_meta=b""):
    kvs = salm_kvs() if kvs is None else kvs
    tensors = salm_tensors() if tensors is None else tensors
    meta = b"".join(skv_bytes(kv) for kv in kvs) + raw_meta
    off, offsets = 0, []
    for t in tensors:
        offsets.append(off if t[4] is None else t[4])
        off = (off + len(t[3]) + 63) // 64 * 64
    table = b""
    for t, o in zip(tensors, offsets):
        table += sstr(t[0]) + struct.pack("<II", t[1], len(t[2])) + b"".join(struct.pack("<Q", d) for d in t[2])
        crc = zlib.crc32(t[3]) if t[6] is None else t[6]
        table += struct.pack("<QQI", o, len(t[3]) if t[5] is None else t[5], crc)
    dofs = (40 + len(meta) + len(table) + 63) // 64 * 64
    hdr = magic + struct.pack("<III", version, len(kvs) if n_kv is None else n_kv,
                              len(tensors) if n_tensors is None else n_tensors)
    hdr += struct.pack("<QQ", len(meta) if meta_bytes is None else meta_bytes, dofs if data_offset is None else data_offset)
    hdr += struct.pack("<II", zlib.crc32(meta + table) if head_crc is None else head_crc, reserved)
    out = bytearray(hdr + meta + table)
    out += b"\0" * (dofs - len(out))
    data = bytearray()
    for t, o in zip(tensors, offsets):
        if t[4] is not None:
            continue
        data += b"\0" * (o - len(data)) + t[3]
    return bytes(out + data)


def skv_set(key, typ, val):
    kvs = salm_kvs()
    for kv in kvs:
        if kv[0] == key:
            kv[1], kv[2] = typ, val
            return kvs
    kvs.append([key, typ, val])
    return kvs


def skv_del(key):
    return [kv for kv in salm_kvs() if kv[0] != key]


def gen_salm():
    d = os.path.join(OUT, "salm")

    def s(name, data, expect, kind="info", extra=None):
        p = os.path.join(d, name + ".salm")
        write(p, data)
        case("salm-" + name, kind, p, extra, expect)

    base = salm_build()
    s("ok-base", base, "")
    s("ok-verify", base, "", extra="--verify")
    s("ok-generate", base, "", kind="gen")
    meta_end = 40 + len(b"".join(skv_bytes(kv) for kv in salm_kvs()))
    for c in sorted({0, 1, 4, 20, 39, 40, 41, 100, 1000, meta_end - 3, meta_end + 10, meta_end + 400,
                     len(base) // 2, len(base) - 64, len(base) - 1}):
        s("trunc-%07d" % c, base[:c], "too small|truncated|past the end|empty|bad data offset|exceeds")
    s("magic-bad", b"SALX" + base[4:], "bad magic|not a .salm or GGUF model file")
    # GGUF's magic: read as a GGUF by the runtime, whose reader refuses the .salm header behind it
    s("magic-gguf", b"GGUF" + base[4:], "GGUF version")
    s("version-0", salm_build(version=0), "version 0")
    s("version-2", salm_build(version=2), "version 2")
    s("reserved-set", salm_build(reserved=7), "reserved")
    s("data-offset-unaligned", salm_build(data_offset=100), "data offset")
    s("data-offset-past-eof", salm_build(data_offset=1 << 40), "data offset")
    s("data-offset-small", salm_build(data_offset=0), "data offset")
    s("meta-bytes-huge", salm_build(meta_bytes=1 << 62), "metadata size")
    s("meta-bytes-short", salm_build(meta_bytes=100), "metadata size|truncated|exceeds")
    s("nkv-huge", salm_build(n_kv=0xFFFFFFFF), "metadata count")
    s("ntensors-huge", salm_build(n_tensors=0xFFFFFFFF), "tensor count")
    s("ntensors-plus-one", salm_build(n_tensors=len(TENSORS) + 1), "truncated|empty name")
    s("header-crc-bad", salm_build(head_crc=0x12345678), "crc32")
    # metadata entries
    s("key-long", salm_build(kvs=salm_kvs() + [["k" * 300, S_I32, 1]]), "exceeds limit")
    s("key-nul", salm_build(kvs=salm_kvs() + [["a\0b", S_I32, 1]]), "NUL")
    s("key-duplicate", salm_build(kvs=salm_kvs() + [["hp.n_embd", S_I32, 32]]), "duplicate metadata key")
    s("kv-type-9", salm_build(kvs=salm_kvs() + [["x", 9, b""]]), "unknown value type 9")
    s("arr-len-huge", salm_build(kvs=[], n_kv=1, raw_meta=sstr("x") + struct.pack("<IQ", S_ARR_F32, 1 << 61)),
      "exceeds the file")
    s("arr-str-len-huge", salm_build(kvs=[], n_kv=1, raw_meta=sstr("x") + struct.pack("<IQ", S_ARR_STR, 1 << 62)),
      "exceeds the file")
    s("str-len-past-end", salm_build(kvs=[], n_kv=1, raw_meta=sstr("x") + struct.pack("<II", S_STR, 0xFFFFFF00)),
      "truncated")
    s("arr-elem-too-long", salm_build(kvs=salm_kvs() + [["x", S_ARR_STR, ["a" * ((1 << 20) + 1)]]]),
      "exceeds limit")

    # tensor table
    def tm(fn, tied=False):
        ts = salm_tensors(tied)
        fn(ts)
        return ts

    def field(name, i, v):
        def f(ts):
            find_t(ts, name)[i] = v
        return f

    s("tensor-dtype-99", salm_build(tensors=tm(field("output_norm.weight", 1, 99))), "unknown dtype 99")
    # the activation-only types (Q8_K 11, Q8_1 12) are never stored
    s("tensor-dtype-q8_K", salm_build(tensors=tm(field("output_norm.weight", 1, 11))), "activation type")
    s("tensor-dtype-q8_1", salm_build(tensors=tm(field("output_norm.weight", 1, 12))), "activation type")
    s("tensor-ndims-0", salm_build(tensors=tm(field("output_norm.weight", 2, []))), "dimensions")
    s("tensor-ndims-5", salm_build(tensors=tm(field("output_norm.weight", 2, [E, 1, 1, 1, 1]))), "dimensions")
    s("tensor-dim-0", salm_build(tensors=tm(field("blk.0.attn_q.weight", 2, [E, 0]))), "dimension 1 is 0")
    s("tensor-dim-huge", salm_build(tensors=tm(field("blk.0.attn_q.weight", 2, [E, 1 << 41]))), "dimension 1 is")
    s("tensor-nel-overflow",
      salm_build(tensors=tm(field("blk.0.attn_q.weight", 2, [1 << 40, 1 << 40]))), "overflows")
    s("tensor-nbytes-wrong", salm_build(tensors=tm(field("blk.0.attn_v.weight", 5, 12))), "does not match")

    def q80(ts):
        t = find_t(ts, "output_norm.weight")
        t[1], t[2] = DT_Q8_0, [33]
    s("tensor-block-misfit", salm_build(tensors=tm(q80)), "not a multiple")
    s("tensor-offset-unaligned", salm_build(tensors=tm(field("output_norm.weight", 4, 32))), "not 64-byte aligned")
    s("tensor-offset-past-eof", salm_build(tensors=tm(field("output_norm.weight", 4, 1 << 40))), "past the end")
    s("tensor-offset-overflow", salm_build(tensors=tm(field("output_norm.weight", 4, (1 << 64) - 64))),
      "past the end")
    s("tensor-overlap", salm_build(tensors=tm(field("blk.1.attn_q.weight", 4, 0))), "overlap")

    def dup(ts):
        ts[4][0] = ts[3][0]
    s("tensor-name-duplicate", salm_build(tensors=tm(dup)), "duplicate tensor name")
    s("tensor-name-long", salm_build(tensors=tm(field("output_norm.weight", 0, "n" * 400))), "exceeds limit")
    s("tensor-crc-bad", salm_build(tensors=tm(field("blk.1.ffn_up.weight", 6, 0xDEADBEEF))), "blk.1.ffn_up.weight",
      extra="--verify")
    # hyperparameters and tokenizer metadata
    s("arch-missing", salm_build(kvs=skv_del("arch")), "'arch'")
    s("arch-unknown", salm_build(kvs=skv_set("arch", S_STR, "mamba")), "mamba")
    s("hp-missing-n_vocab", salm_build(kvs=skv_del("hp.n_vocab")), "hp.n_vocab")
    s("hp-n_embd-wrong-type", salm_build(kvs=skv_set("hp.n_embd", S_F32, 32.0)), "hp.n_embd")
    s("hp-n_embd-zero", salm_build(kvs=skv_set("hp.n_embd", S_I32, 0)), "n_embd")
    s("hp-n_head-not-dividing", salm_build(kvs=skv_set("hp.n_head_kv", S_I32, 3)), "n_head_kv")
    s("hp-head_dim-odd", salm_build(kvs=skv_set("hp.head_dim", S_I32, 7)), "head_dim")
    s("hp-n_layer-huge", salm_build(kvs=skv_set("hp.n_layer", S_I32, 1 << 20)), "implausibly large")
    s("hp-n_vocab-negative", salm_build(kvs=skv_set("hp.n_vocab", S_I32, -5)), "n_vocab")
    s("hp-n_vocab-mismatch", salm_build(kvs=skv_set("hp.n_vocab", S_I32, V + 1)), "vocabulary")
    s("hp-norm_eps-nan", salm_build(kvs=skv_set("hp.norm_eps", S_F32, float("nan"))), "norm_eps")
    s("hp-rope_theta-zero", salm_build(kvs=skv_set("hp.rope_theta", S_F32, 0.0)), "rope_theta")
    s("hp-act-7", salm_build(kvs=skv_set("hp.act", S_I32, 7)), "hp.act")
    s("tok-model-unknown", salm_build(kvs=skv_set("tok.model", S_STR, "wordpiece")), "wordpiece")
    s("tok-tokens-missing", salm_build(kvs=skv_del("tok.tokens")), "tok.tokens")
    s("tok-scores-short", salm_build(kvs=skv_set("tok.scores", S_ARR_F32, SCORES[:-2])), "tok.scores")
    s("tok-types-invalid", salm_build(kvs=skv_set("tok.types", S_ARR_I32, TYPES[:-1] + [9])), "type 9")
    s("tok-bos-out-of-range", salm_build(kvs=skv_set("tok.bos_id", S_I32, 5000)), "tok.bos_id")
    bad = list(TOKENS)
    bad[284] = b"\xc3\x28"  # a lead byte followed by a non-continuation byte
    s("tok-bad-utf8", salm_build(kvs=skv_set("tok.tokens", S_ARR_STR, bad)), "UTF-8")
    overlong = list(TOKENS)
    overlong[285] = b"\xc0\xaf"  # overlong encoding of '/'
    s("tok-overlong-utf8", salm_build(kvs=skv_set("tok.tokens", S_ARR_STR, overlong)), "UTF-8")
    s("tok-score-nan", salm_build(kvs=skv_set("tok.scores", S_ARR_F32, SCORES[:7] + [float("nan")] + SCORES[8:])),
      "NaN score")
    # tensors vs hyperparameters
    s("tensor-missing", salm_build(tensors=[t for t in salm_tensors() if t[0] != "blk.0.ffn_gate.weight"]),
      "blk.0.ffn_gate.weight")

    def shape(ts):
        t = find_t(ts, "blk.1.attn_output.weight")
        t[2], t[3] = [E, E // 2], f32([0.0] * (E * E // 2))
    s("tensor-shape-mismatch", salm_build(tensors=tm(shape)), "blk.1.attn_output.weight")
    # NaN / Inf weights: the file is well-formed, so `info` accepts it; generating must stop with a
    # message instead of sampling from NaN logits.
    def poison(name, val):
        def f(ts):
            t = find_t(ts, name)
            v = list(struct.unpack("<%df" % (len(t[3]) // 4), t[3]))
            for i in range(len(v)):
                v[i] = val
            t[3] = f32(v)
        return f
    s("nan-weights", salm_build(tensors=tm(poison("output_norm.weight", float("nan")))), "NaN|non-finite",
      kind="gen")
    s("nan-embedding", salm_build(tensors=tm(poison("token_embd.weight", float("nan")))), "NaN|non-finite",
      kind="gen")
    s("inf-weights", salm_build(tensors=tm(poison("blk.0.ffn_down.weight", float("inf")))), "NaN|non-finite",
      kind="gen")


# ---- llama2.c checkpoint and tokenizer.bin -----------------------------------------------------
def l2c_tokenizer(tokens=None, max_len=None, scores=None, extra=b""):
    tokens = TOKENS if tokens is None else tokens
    scores = SCORES if scores is None else scores
    body = b""
    ml = 0
    for i, t in enumerate(tokens):
        if isinstance(t, str):
            t = {"<s>": "\n<s>\n", "</s>": "\n</s>\n"}.get(t, t).replace("\u2581", " ").encode("utf-8")
        ml = max(ml, len(t))
        body += struct.pack("<fi", scores[i], len(t)) + t
    return struct.pack("<I", ml if max_len is None else max_len) + body + extra


def l2c_weights(version, shared, group=32, nan=False):
    """Weights in the file order of import_llama2c.c for version 0/1/2."""
    kv = HKV * HD
    emb = randf(V * E)
    if nan:
        emb[3 * E + 5] = float("nan")
    rms_att, rms_ffn, rms_final = [1.0] * (L * E), [1.0] * (L * E), [1.0] * E
    mats = {"wq": randf(L * E * E), "wk": randf(L * E * kv), "wv": randf(L * E * kv), "wo": randf(L * E * E),
            "w1": randf(L * F * E), "w2": randf(L * E * F), "w3": randf(L * F * E)}
    wcls = randf(V * E)
    if version < 2:
        out = b""
        if version == 0:
            out += f32(emb) + f32(rms_att)
        else:
            out += f32(rms_att) + f32(rms_ffn) + f32(rms_final) + f32(emb)
        out += f32(mats["wq"]) + f32(mats["wk"]) + f32(mats["wv"]) + f32(mats["wo"])
        if version == 0:
            out += f32(rms_ffn)
        out += f32(mats["w1"]) + f32(mats["w2"]) + f32(mats["w3"])
        if version == 0:
            out += f32(rms_final) + f32([0.0] * (CTX * HD // 2)) * 2
        if not shared:
            out += f32(wcls)
        return out

    def q(vals, n_tensors):  # each tensor: int8 values then one f32 scale per group
        per = len(vals) // n_tensors
        out = b""
        for k in range(n_tensors):
            v = vals[k * per:(k + 1) * per]
            qs = [max(-127, min(127, int(round(x * 1000)))) for x in v]
            out += struct.pack("<%db" % per, *qs) + f32([0.001] * (per // group))
        return out
    out = f32(rms_att) + f32(rms_ffn) + f32(rms_final) + q(emb, 1)
    for k in ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]:
        out += q(mats[k], L)
    if not shared:
        out += q(wcls, 1)
    return out


def l2c_header(version, dims=None, shared=1, group=32, magic=0x616b3432):
    dims = [E, F, L, H, HKV, V if (shared or version) else -V, CTX] if dims is None else dims
    if version == 0:
        return struct.pack("<7i", *dims)
    h = struct.pack("<Ii7iB", magic, version, *dims, shared)
    if version == 2:
        h += struct.pack("<i", group)
    return h + b"\0" * (256 - len(h))


def gen_l2c():
    d = os.path.join(OUT, "l2c")
    tok = os.path.join(d, "tokenizer.bin")
    write(tok, l2c_tokenizer())

    def c(name, data, expect, extra=None):
        p = os.path.join(d, name + ".bin")
        write(p, data)
        case("l2c-" + name, "q", p, "--tokenizer " + os.path.relpath(tok, OUT) + (" " + extra if extra else ""), expect)

    def t(name, data, expect):
        p = os.path.join(d, "tok-" + name + ".tokenizer")
        write(p, data)
        case("l2c-tok-" + name, "q", os.path.join(d, "ok-v0.bin"), "--tokenizer " + os.path.relpath(p, OUT), expect)

    v0 = l2c_header(0) + l2c_weights(0, 1)
    c("ok-v0", v0, "")
    c("ok-v0-unshared", l2c_header(0, shared=0) + l2c_weights(0, 0), "")
    c("ok-v1", l2c_header(1) + l2c_weights(1, 1), "")
    c("ok-v2", l2c_header(2) + l2c_weights(2, 1), "")
    for cut in sorted({0, 4, 27, 28, 100, len(v0) // 2, len(v0) - 4}):
        c("v0-trunc-%06d" % cut, v0[:cut], "too small|truncated|needs")
    c("v0-extra-bytes", v0 + b"\0" * 8, "needs")
    c("v0-dim-0", l2c_header(0, [0, F, L, H, HKV, V, CTX]) + l2c_weights(0, 1), "dim 0")
    c("v0-layers-negative", l2c_header(0, [E, F, -2, H, HKV, V, CTX]) + l2c_weights(0, 1), "n_layers -2")
    c("v0-heads-0", l2c_header(0, [E, F, L, 0, HKV, V, CTX]) + l2c_weights(0, 1), "n_heads 0")
    c("v0-dim-huge", l2c_header(0, [1 << 30, F, L, H, HKV, V, CTX]) + l2c_weights(0, 1), "implausibly large")
    c("v0-seq-huge", l2c_header(0, [E, F, L, H, HKV, V, 1 << 30]) + l2c_weights(0, 1), "implausibly large")
    c("v0-heads-not-dividing", l2c_header(0, [E, F, L, 5, 5, V, CTX]) + l2c_weights(0, 1), "inconsistent")
    c("v0-kv-heads-more", l2c_header(0, [E, F, L, H, 8, V, CTX]) + l2c_weights(0, 1), "inconsistent")
    c("v0-head-size-odd", l2c_header(0, [E, F, L, 32, 32, V, CTX]) + l2c_weights(0, 1), "inconsistent")
    c("v0-vocab-int-min", l2c_header(0, [E, F, L, H, HKV, -(1 << 31), CTX]) + l2c_weights(0, 1), "vocab_size")
    c("v0-vocab-mismatch", l2c_header(0, [E, F, L, H, HKV, V + 1, CTX]) + l2c_weights(0, 1), "needs")
    c("v1-version-3", l2c_header(1)[:4] + struct.pack("<i", 3) + l2c_header(1)[8:] + l2c_weights(1, 1), "version 3")
    c("v1-shared-2", l2c_header(1, shared=2) + l2c_weights(1, 1), "shared-classifier")
    c("v1-vocab-negative", l2c_header(1, [E, F, L, H, HKV, -V, CTX]) + l2c_weights(1, 1), "vocab_size")
    c("v1-header-truncated", l2c_header(1)[:200], "truncated llama2.c header")
    c("v2-group-0", l2c_header(2, group=0) + l2c_weights(2, 1), "group size 0")
    c("v2-group-7", l2c_header(2, group=7) + l2c_weights(2, 1), "group size 7")
    c("v2-group-huge", l2c_header(2, group=1 << 30) + l2c_weights(2, 1), "group size")
    c("v2-truncated", (l2c_header(2) + l2c_weights(2, 1))[:-10], "needs")
    c("v0-nan-weights-q8_0", l2c_header(0) + l2c_weights(0, 1, nan=True), "token_embd.weight", "--type q8_0")
    # tokenizer.bin
    tk = l2c_tokenizer()
    t("empty", b"", "truncated llama2.c tokenizer")
    t("max-len-0", l2c_tokenizer(max_len=0), "max_token_length")
    t("max-len-huge", l2c_tokenizer(max_len=1 << 31), "max_token_length")
    for cut in [2, 8, 9, 50, len(tk) // 2, len(tk) - 1]:
        t("trunc-%05d" % cut, tk[:cut], "truncated|tokens, but")
    t("extra-token", tk + struct.pack("<fi", 0.0, 1) + b"q", "left after")
    t("fewer-tokens", l2c_tokenizer(tokens=TOKENS[:-1], scores=SCORES[:-1]), "expects")
    t("negative-len", tk[:4] + struct.pack("<fi", 0.0, -5) + tk[12:], "negative length")
    t("len-over-max", l2c_tokenizer(max_len=3), "longer than max_token_length")
    nul = list(TOKENS)
    nul[286] = b"a\0"
    t("token-nul", l2c_tokenizer(tokens=nul), "NUL")
    bad = list(TOKENS)
    bad[287] = b"\x80abc"  # a stray continuation byte
    t("token-bad-utf8", l2c_tokenizer(tokens=bad), "UTF-8")
    t("score-nan", l2c_tokenizer(scores=SCORES[:100] + [float("nan")] + SCORES[101:]), "NaN score")


# ---- Hugging Face: tokenizer.json, config.json, safetensors -----------------------------------
def tokjson_spm():
    """A Llama-2-style tokenizer.json (byte_fallback BPE) over the tiny vocabulary."""
    vocab = {t: i for i, t in enumerate(TOKENS)}
    merges = []
    for t in V_PIECES:  # every multi-character piece is made of two pieces that exist
        for k in range(1, len(t)):
            if t[:k] in vocab and t[k:] in vocab:
                merges.append(t[:k] + " " + t[k:])
                break
    return {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": TOKENS[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in range(3)],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                    {"Sequence": {"id": "A", "type_id": 0}}]},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
                                                      "content": " "}, {"type": "ByteFallback"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                  "merges": merges},
    }


def gpt2_bytes():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def tokjson_bpe():
    """A Llama-3-style byte-level tokenizer.json over the 256 byte symbols and a few merges."""
    m = gpt2_bytes()
    toks = [m[b] for b in range(256)]
    merges = [["\u0120", "t"], ["h", "e"], ["\u0120t", "he"]]
    toks += ["\u0120t", "he", "\u0120the", "<|begin_of_text|>", "<|eot_id|>"]
    vocab = {t: i for i, t in enumerate(toks[:-2])}
    return {
        "version": "1.0",
        "added_tokens": [{"id": len(toks) - 2 + k, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for k, c in enumerate(["<|begin_of_text|>", "<|eot_id|>"])],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }


def jdump(obj):
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def gen_tokjson():
    d = os.path.join(OUT, "tokjson")

    def t(name, data, expect, config=None):
        p = os.path.join(d, name, "tokenizer.json")
        write(p, data if isinstance(data, bytes) else jdump(data))
        if config is not None:
            write(os.path.join(d, name, "tokenizer_config.json"), config if isinstance(config, bytes) else jdump(config))
        case("tokjson-" + name, "tok", p, None, expect)

    def mod(base, fn):
        j = base()
        fn(j)
        return j

    spm, bpe = jdump(tokjson_spm()), jdump(tokjson_bpe())
    t("ok-spm", spm, "")
    t("ok-bpe", bpe, "")
    t("ok-spm-config", spm, "", config={"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True})
    t("empty", b"", "not valid JSON|empty")
    for cut in [1, 10, len(spm) // 3, len(spm) - 2]:
        t("trunc-%05d" % cut, spm[:cut], "not valid JSON")
    t("garbage", bytes(range(256)), "not valid JSON")
    t("top-array", b"[1, 2, 3]", "expected a JSON object")
    t("deep-nesting", b"[" * 100000 + b"]" * 100000, "not valid JSON|expected a JSON object")
    t("model-missing", mod(tokjson_spm, lambda j: j.pop("model")), "model: missing")
    t("model-wordpiece", mod(tokjson_spm, lambda j: j["model"].update(type="WordPiece")), "WordPiece")
    t("vocab-array", mod(tokjson_spm, lambda j: j["model"].update(vocab=[1, 2])), "model.vocab")
    t("vocab-id-negative", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"x": -1})), "not a token id")
    t("vocab-id-float", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"x": 2.5})), "not a token id")
    t("vocab-id-huge", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"x": 1e300})), "not a token id")
    t("vocab-id-string", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"x": "7"})), "token id")
    t("vocab-id-gap", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"x": 5000})), "no token has id")
    t("vocab-id-sparse-max", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"x": (1 << 24) - 1})),
      "no token has id|ids must")
    t("vocab-id-duplicate", mod(tokjson_spm, lambda j: j["model"]["vocab"].update({"zz": 5})), "given to both")
    t("vocab-bad-utf8", spm.replace(b'"\xe2\x96\x81the"', b'"\xe2\x96the"'), "UTF-8")
    t("vocab-lone-surrogate", spm.replace(b'"\xe2\x96\x81cat"', b'"\\ud800cat"'), "UTF-8|surrogate")
    t("merges-missing", mod(tokjson_spm, lambda j: j["model"].pop("merges")), "model.merges")
    t("merges-object", mod(tokjson_spm, lambda j: j["model"].update(merges={})), "model.merges")
    t("merge-three-pieces", mod(tokjson_spm, lambda j: j["model"]["merges"].append("a b c")), "model.merges")
    t("merge-number", mod(tokjson_spm, lambda j: j["model"]["merges"].append(7)), "model.merges")
    t("added-not-array", mod(tokjson_spm, lambda j: j.update(added_tokens={"a": 1})), "added_tokens")
    t("added-empty-content", mod(tokjson_spm, lambda j: j["added_tokens"][0].update(content="")), "empty")
    t("added-content-number", mod(tokjson_spm, lambda j: j["added_tokens"][0].update(content=5)), "content")
    t("added-id-mismatch", mod(tokjson_spm, lambda j: j["added_tokens"][1].update(content="<x>")), "added_tokens[1]")
    t("added-special-string", mod(tokjson_spm, lambda j: j["added_tokens"][1].update(special="yes")), "special")
    t("normalizer-nfkc", mod(tokjson_spm, lambda j: j.update(normalizer={"type": "NFKC"})), "NFKC")
    t("normalizer-no-type", mod(tokjson_spm, lambda j: j.update(normalizer={"x": 1})), "normalizer")
    t("normalizer-seq-bad", mod(tokjson_spm, lambda j: j["normalizer"].update(normalizers=5)), "normalizer")
    t("bpe-regex-other", mod(tokjson_bpe, lambda j: j["pre_tokenizer"]["pretokenizers"][0]["pattern"]
                             .update(Regex="\\w+")), "Regex")
    t("bpe-no-merges-flag", mod(tokjson_bpe, lambda j: j["model"].update(ignore_merges=False)), "ignore_merges")
    t("bpe-decoder-missing", mod(tokjson_bpe, lambda j: j.update(decoder=None)), "decoder")
    t("neither-family", mod(tokjson_spm, lambda j: j["model"].update(byte_fallback=False)), "byte_fallback")
    t("config-not-json", spm, "not valid JSON", config=b"{bos_token: <s>}")
    t("config-bos-unknown", spm, "bos_token", config={"bos_token": "<BOS>"})
    t("config-bos-number", spm, "bos_token", config={"bos_token": 1})
    t("config-add-bos-string", spm, "add_bos_token", config={"add_bos_token": "true"})


def gen_jsonl():
    """Evaluation datasets (salign eval): damaged files end the run with a message; bad lines are
    reported and skipped (README, Evaluation), so a file of nothing but bad lines is an error too."""
    d = os.path.join(OUT, "jsonl")

    def j(name, data, expect):
        p = os.path.join(d, name)
        write(p, data)
        case("jsonl-" + name, "eval", p, None, expect)
    good = b'{"id": 1, "prompt": "Once upon a time"}\n{"id": 2, "question": "The cat"}\n'
    gz = gzip_bytes(good)
    j("ok-plain.jsonl", good, "")
    j("ok-gzip.jsonl.gz", gz, "")
    j("gz-truncated.jsonl.gz", gz[:len(gz) // 2], "ends early|truncated")
    bad_crc = bytearray(gz)
    bad_crc[-8] ^= 0xFF
    j("gz-bad-crc.jsonl.gz", bytes(bad_crc), "damaged")
    j("gz-garbage-after-header.jsonl.gz", gz[:10] + bytes(range(256)) * 4, "damaged|ends early")
    j("empty.jsonl", b"", "no records")
    j("binary.jsonl", bytes(range(256)) * 16, "no records")
    j("deep-nesting.jsonl", b'{"prompt": ' + b"[" * 100000 + b"]" * 100000 + b"}\n", "no records")
    j("all-bad-lines.jsonl", b'[1, 2]\n"str"\n{"id": 1}\n{"prompt": 5}\n{"prompt": ""}\n{"id": 1, "prompt": "\xff"}\n'
      b'{"id": {"a": 1}, "prompt": "x"}\n', "no records")


def gen_hf():
    """HF model folders (config.json + model.safetensors + tokenizer.json), for the HF importer."""
    d = os.path.join(OUT, "hf")
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
           "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
           "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}

    def hf_name(n):
        if n in names:
            return names[n]
        _, l, kind, _w = n.split(".")
        return "model.layers.%s.%s.weight" % (l, per[kind])

    def st_build(tensors=None, header_override=None, hlen=None, pad=b""):
        tensors = [(hf_name(n), list(reversed(ne)), f32(v)) for n, ne, v in TENSORS] if tensors is None else tensors
        hdr, data = {"__metadata__": {"format": "pt"}}, b""
        for n, shape, b in tensors:
            hdr[n] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
            data += b
        hb = json.dumps(hdr).encode() if header_override is None else header_override(hdr)
        hb += b" " * ((-len(hb)) % 8)
        return struct.pack("<Q", len(hb) if hlen is None else hlen) + hb + pad + data

    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": E,
              "intermediate_size": F, "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": HKV,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": V, "max_position_embeddings": CTX,
              "tie_word_embeddings": False, "torch_dtype": "float32", "hidden_act": "silu"}

    def h(name, st=None, cfg=None, tok=None, expect="", extra=None, files=None):
        p = os.path.join(d, name)
        if files is None:
            write(os.path.join(p, "model.safetensors"), st if st is not None else st_build())
        for fn, data in (files or {}).items():
            write(os.path.join(p, fn), data)
        c = cfg if cfg is not None else config
        write(os.path.join(p, "config.json"), c if isinstance(c, bytes) else jdump(c))
        write(os.path.join(p, "tokenizer.json"), tok if tok is not None else jdump(tokjson_spm()))
        case("hf-" + name, "hf", p, extra, expect)

    def cfg(**kw):
        c = dict(config)
        for k, v in kw.items():
            if v is None:
                c.pop(k)
            else:
                c[k] = v
        return c

    def hdr_mod(fn):
        def f(hdr):
            fn(hdr)
            return json.dumps(hdr).encode()
        return f

    base = st_build()
    h("ok-base")
    for cut in [0, 7, 8, 30, len(base) // 2, len(base) - 1]:
        h("st-trunc-%06d" % cut, st=base[:cut], expect="truncated|too small|header|past the end|short|size")
    h("st-hlen-huge", st=st_build(hlen=(1 << 64) - 1), expect="header")
    h("st-hlen-zero", st=st_build(hlen=0), expect="header|JSON")
    h("st-header-not-json", st=st_build(header_override=lambda hd: b"{not json"), expect="JSON")
    h("st-header-array", st=st_build(header_override=lambda hd: b"[]"), expect="object|not a safetensors")
    h("st-dtype-unknown", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(dtype="F31"))), expect="dtype")
    h("st-dtype-int", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(dtype=4))), expect="dtype")
    h("st-shape-mismatch", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(shape=[E + 1]))), expect="model.norm.weight")
    h("st-shape-negative", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(shape=[-E]))), expect="shape")
    h("st-shape-huge", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(shape=[1 << 40, 1 << 40]))), expect="model.norm.weight")
    h("st-offsets-past-eof", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(data_offsets=[1 << 40, (1 << 40) + 4 * E]))),
      expect="model.norm.weight")
    h("st-offsets-reversed", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].update(data_offsets=hd["model.norm.weight"]["data_offsets"][::-1]))),
      expect="model.norm.weight")

    def overlap(hd):
        a = hd["model.layers.0.input_layernorm.weight"]["data_offsets"]
        hd["model.layers.1.input_layernorm.weight"]["data_offsets"] = list(a)
    h("st-overlap", st=st_build(header_override=hdr_mod(overlap)), expect="overlap")
    h("st-offsets-missing", st=st_build(header_override=hdr_mod(
        lambda hd: hd["model.norm.weight"].pop("data_offsets"))), expect="data_offsets")
    h("st-nan-weights-q8_0", st=st_build(tensors=[(hf_name(n), list(reversed(ne)),
                                                     f32([float("nan")] * len(v)) if n == "blk.0.attn_q.weight"
                                                     else f32(v)) for n, ne, v in TENSORS]),
      expect="NaN", extra="--type q8_0")
    h("config-not-json", cfg=b'{"hidden_size": 32,', expect="config.json")
    h("config-missing-hidden", cfg=cfg(hidden_size=None), expect="hidden_size")
    h("config-hidden-string", cfg=cfg(hidden_size="32"), expect="hidden_size")
    h("config-heads-zero", cfg=cfg(num_attention_heads=0), expect="num_attention_heads|n_head")
    h("config-heads-not-dividing", cfg=cfg(num_key_value_heads=3), expect="num_key_value_heads|n_head_kv")
    h("config-layers-huge", cfg=cfg(num_hidden_layers=1 << 40), expect="num_hidden_layers")
    h("config-vocab-mismatch", cfg=cfg(vocab_size=V + 7), expect="vocab")
    # 2^24 tokens claimed by a 150 KB folder: refused before padding the vocabulary to that size
    h("config-vocab-huge", cfg=cfg(vocab_size=1 << 24), expect="vocab_size")
    h("config-arch-unknown", cfg=cfg(architectures=["MambaForCausalLM"], model_type="mamba"), expect="mamba")
    h("tokenizer-bad-json", tok=b'{"model": ', expect="tokenizer.json")
    # sharded weights: model.safetensors.index.json tnames the shard of every tensor
    tnames = [hf_name(n) for n, _, _ in TENSORS]
    half = len(tnames) // 2
    shard_a = st_build(tensors=[(hf_name(n), list(reversed(ne)), f32(v)) for n, ne, v in TENSORS[:half]])
    shard_b = st_build(tensors=[(hf_name(n), list(reversed(ne)), f32(v)) for n, ne, v in TENSORS[half:]])

    def index(wm):
        return jdump({"metadata": {"total_size": 0}, "weight_map": wm})
    wm = {n: ("a.safetensors" if i < half else "b.safetensors") for i, n in enumerate(tnames)}
    shards = {"a.safetensors": shard_a, "b.safetensors": shard_b}
    h("ok-sharded", files=dict(shards, **{"model.safetensors.index.json": index(wm)}))
    h("index-not-json", files=dict(shards, **{"model.safetensors.index.json": b'{"weight_map": {'}),
      expect="index.json")
    h("index-empty-map", files=dict(shards, **{"model.safetensors.index.json": index({})}), expect="weight_map")
    h("index-path-traversal", files=dict(shards, **{"model.safetensors.index.json": index(
        dict(wm, **{tnames[0]: "../../../../../../etc/passwd"}))}), expect="same directory")
    h("index-absolute-path", files=dict(shards, **{"model.safetensors.index.json": index(
        dict(wm, **{tnames[0]: "/etc/passwd"}))}), expect="same directory")
    h("index-missing-shard", files=dict(shards, **{"model.safetensors.index.json": index(
        dict(wm, **{tnames[0]: "c.safetensors"}))}), expect="c.safetensors")
    h("index-wrong-shard", files=dict(shards, **{"model.safetensors.index.json": index(
        dict(wm, **{tnames[0]: "b.safetensors"}))}), expect=tnames[0])
    h("shard-duplicate-tensor", files={"a.safetensors": shard_a, "b.safetensors": st_build(
        tensors=[(hf_name(n), list(reversed(ne)), f32(v)) for n, ne, v in TENSORS[half - 1:]]),
        "model.safetensors.index.json": index(wm)}, expect=tnames[half - 1])


# ---- libFuzzer seed corpora (gen.py --seeds DIR) -------------------------------------------------
# The same formats, from an even smaller model (a few KiB per file: libFuzzer mutates small inputs
# much faster), in the input layouts of tests/fuzz/fuzz_*.c.
CFG_SEP = b"\0\0CFG\0\0"  # fuzz_tokjson / fuzz_safetensors: separates the files of one input


def use_small_model():
    global V_PIECES, TOKENS, V, E, L, H, HKV, F, CTX, HD, SCORES, TYPES, TENSORS
    V_PIECES = ["\u2581", "\u2581a", "a", "b", "\u2581b", "ab", "\u2581ab"]
    TOKENS = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in (0x0A, 0x20, 0x41, 0xC3, 0xE2, 0xFF)] + V_PIECES
    V = len(TOKENS)
    E, L, H, HKV, F, CTX = 8, 1, 2, 1, 16, 16
    HD = E // H
    SCORES = [0.0] * (V - len(V_PIECES)) + [-float(i) for i in range(len(V_PIECES))]
    TYPES = [2, 3, 3] + [6] * (V - 3 - len(V_PIECES)) + [1] * len(V_PIECES)
    TENSORS = llama_tensors()


def gen_seeds(d):
    use_small_model()

    def w(target, name, data):
        write(os.path.join(d, target, name), data)
    w("gguf", "valid.gguf", gguf_build())
    w("gguf", "tied.gguf", gguf_build(tensors=[t for t in gguf_tensors() if t[0] != "output.weight"]))
    w("gguf", "q8_0-norm.gguf", gguf_build(tensors=[t if t[0] != "output_norm.weight" else
                                                   [t[0], [32], 8, b"\0" * 34, None] for t in gguf_tensors()]))
    # one tensor of each low-bit block type with arbitrary bytes, for the fuzz target's decoding
    for typ, name, block, bb in [(10, "q2_K", 256, 84), (11, "q3_K", 256, 110), (20, "iq4_nl", 32, 18),
                                 (23, "iq4_xs", 256, 136)]:
        data = bytes((i * 37 + 11) & 255 for i in range(256 // block * bb))
        w("gguf", name + "-norm.gguf", gguf_build(tensors=[t if t[0] != "output_norm.weight" else
                                                           [t[0], [256], typ, data, None] for t in gguf_tensors()]))
    w("gguf", "aligned-64.gguf", gguf_build(kvs=gguf_kvs() + [["general.alignment", G_U32, 64]], align=64))
    w("gguf", "vocab-only.gguf", gguf_build(kvs=gguf_kvs(), tensors=[]))
    w("salm", "valid.salm", salm_build())
    w("salm", "tied.salm", salm_build(kvs=[kv if kv[0] != "hp.tied_output" else [kv[0], S_I32, 1] for kv in salm_kvs()],
                                      tensors=salm_tensors(tied=True)))
    tok = l2c_tokenizer()
    for v in (0, 1, 2):
        ck = l2c_header(v) + l2c_weights(v, 1)
        w("llama2c", "v%d.input" % v, struct.pack("<I", len(ck)) + ck + tok)
    ck = l2c_header(0, shared=0) + l2c_weights(0, 0)
    w("llama2c", "v0-unshared.input", struct.pack("<I", len(ck)) + ck + tok)
    w("llama2c", "tokenizer-only.input", struct.pack("<I", 0) + tok)
    spm, bpe = jdump(tokjson_spm()), jdump(tokjson_bpe())
    w("tokjson", "spm.json", spm)
    w("tokjson", "bpe.json", bpe)
    w("tokjson", "spm-config.json", spm + CFG_SEP + jdump({"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                                                           "add_bos_token": True, "chat_template": "{{ x }}"}))
    w("tokjson", "bpe-config.json", bpe + CFG_SEP + jdump({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                                                           "chat_template": [{"name": "default", "template": "t"}]}))
    # safetensors: a bare file, or config.json SEP model.safetensors (an HF folder with a fixed tokenizer)
    hdr, data = {"__metadata__": {"format": "pt"}}, b""
    for n, shape, dt, b in [("a", [2, 3], "F32", f32(randf(6))), ("b", [4], "F16", b"\0" * 8),
                            ("c", [], "BF16", b"\0\0"), ("d", [0, 5], "F32", b"")]:
        hdr[n] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    hb = json.dumps(hdr).encode()
    w("safetensors", "plain.safetensors", struct.pack("<Q", len(hb)) + hb + data)
    hf = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}
    per = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
           "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    inv = {v: k for k, v in hf.items()}
    hdr, data = {}, b""
    for n, ne, v in TENSORS:
        if n in inv:
            hn = inv[n]
        else:
            _, l, kind, _w = n.split(".")
            hn = "model.layers.%s.%s.weight" % (l, [k for k, x in per.items() if x == kind][0])
        b = f32(v)
        hdr[hn] = {"dtype": "F32", "shape": list(reversed(ne)), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    hb = json.dumps(hdr).encode()
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": E, "intermediate_size": F,
              "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": HKV, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "vocab_size": V, "max_position_embeddings": CTX, "tie_word_embeddings": False}
    w("safetensors", "hf-folder.input", jdump(config) + CFG_SEP + struct.pack("<Q", len(hb)) + hb + data)
    # not an input: the fixed tokenizer.json of fuzz_safetensors.c's HF folders
    write(os.path.join(d, "..", "data", "hf-tokenizer.json"), spm)
    # tokenizer: byte 0 picks the vocabulary and the flags, the rest is the text
    texts = [b"Hello world", b"Once upon a time, there was a cat.", b"<|eot_id|><end_of_turn></s><s>[INST]",
             b"\xff\xfe\xc3( \xe2\x82 \xed\xa0\x80 ok", "\u2581\u2581 caf\u00e9 \u65e5\u672c\u8a9e".encode(),
             b"  \n\n\t 12345 1.5e-3 don't I'LL", "Ａ\U0001F600 e\u0301".encode()]
    for i, t in enumerate(texts):
        for sel in (0, 1, 2, 3, 4, 5, 6, 7):
            w("tokenizer", "t%d-%d.txt" % (i, sel), bytes([sel * 32 + i]) + t)
    # sentence: byte 0 is the mode and flags, the rest the text
    stexts = [b"Hello there. How are you? Fine!", b"Dr. Smith went to Washington, D.C. in 2019. He said \"hi.\" Then left",
              b"```\ncode. here.\n```\nDone. Next", b"e.g. this i.e. that... and \xe2\x80\x9dquoted.\xe2\x80\x9d Ok",
              b"No terminator at all", b"\n\nPara one\n\nPara two.", b"J. K. Rowling wrote it. Mr. X agreed?!"]
    for i, t in enumerate(stexts):
        for sel in (0, 1, 2, 3):
            w("sentence", "s%d-%d.txt" % (i, sel), bytes([sel]) + t)
    # jsonl: dataset lines (and one gzip'ed file)
    lines = [b'{"id": 1, "prompt": "Hi there"}', b'{"id": "a-2", "question": "What?", "extra": [1, 2]}',
             b'{"instruction": "Do it", "input": "now"}', b'{"problem": "1+1", "answer": 2}',
             b'{"id": 3, "mode": "none", "answer": "x", "stop": "eos"}', b'not json', b'{"id": {"x": 1}}',
             b'{"prompt": ""}', b'[1, 2]', b'{"id": 1e400, "prompt": "\\ud800"}']
    w("jsonl", "data.jsonl", b"\n".join(lines) + b"\n")
    w("jsonl", "crlf.jsonl", b"\r\n".join(lines[:4]) + b"\r\n")
    w("jsonl", "torn.jsonl", b"\n".join(lines[:3]) + b'\n{"id": 9, "pro')
    w("jsonl", "data.jsonl.gz", gzip_bytes(b"\n".join(lines)))


def gzip_bytes(data):
    import gzip
    import io
    bio = io.BytesIO()
    with gzip.GzipFile(fileobj=bio, mode="wb", mtime=0) as g:
        g.write(data)
    return bio.getvalue()


if len(sys.argv) > 2 and sys.argv[1] == "--seeds":
    gen_seeds(sys.argv[2])
    print("seed corpora in %s" % sys.argv[2])
    sys.exit(0)
gen_gguf()
gen_salm()
gen_l2c()
gen_tokjson()
gen_hf()
gen_jsonl()
with open(os.path.join(OUT, "manifest.tsv"), "w", encoding="utf-8") as f:
    for row in MANIFEST:
        f.write("\t".join(row) + "\n")
print("%d cases in %s" % (len(MANIFEST), OUT))
