#!/usr/bin/env python3
"""gen_strings.py N SEED [EXCLUDE_FILE] - N random test strings, one JSON string per line.

Written for salign's tokenizer oracle comparison (tests/run-oracle-tokenizers.sh). Seeded, so every
run tests the same strings. Each string joins a few random "atoms" drawn from many scripts and
character classes that tokenizers treat differently: Latin (ASCII and accented, also decomposed,
so NFC matters), CJK, Hangul (also as conjoining jamo), Cyrillic, Greek, Arabic, Hebrew,
Devanagari, Thai, Khmer, emoji (skin tones, ZWJ sequences, flags, keycaps), digit runs (ASCII and
other Nd/Nl/No), whitespace runs (\\t \\n \\r, several spaces, NBSP, other White_Space), punctuation,
contractions ('s 'LL ...), code, and strings that look like added tokens ("<think>", "<b>",
"<|eot_id|>"). Only valid UTF-8 (no surrogates, no NUL): what HF does with invalid bytes is not
comparable (JS strings are UTF-16), so invalid input is tested for round trips in C instead.
Characters are assigned ones from old blocks, so the oracle's and utf8proc's Unicode tables agree.

EXCLUDE_FILE: one JSON string per line; strings containing any of them are dropped (and more are
generated), e.g. a tokenizer's special added tokens, which HF cuts out of any text but salign only
out of template text (by design: user content must not produce control tokens).
"""
import json
import random
import sys
import unicodedata


def rng_chars(r, lo, hi, k):
    return "".join(chr(r.randint(lo, hi)) for _ in range(k))


WORDS = ["the", "The", "HELLO", "world", "token", "izer", "ing", "tion", "Salign", "llama", "Qwen", "gemma",
         "a", "I", "x", "supercalifragilistic", "don", "it", "we", "CamelCase", "snake_case", "ALLCAPS",
         "naïve", "café", "résumé", "Ångström", "straße", "smørrebrød", "jalapeño", "Việt", "Cửa", "façade",
         "coöperate", "Œuvre", "Ǆemal", "ǅ", "ſtraße", "İstanbul", "ﬁne", "𝐀𝐁𝐂", "𐌰𐌱"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'lL", "'D",
                "'x", "''", "'", "’s", "'ſ", "'ſt", "n't", "'123", "' s"]
CJK = ["我想在apple工作", "天～", "中文字符", "漢字", "東京都", "ひらがな", "カタカナ", "日本語のテキスト", "한국어", "안녕하세요",
       "𠀀𠀁", "〇", "々", "ー"]
DECOMPOSED = ["e\u0301", "A\u030a", "n\u0303", "o\u0308", "a\u0300\u0301", "\u1100\u1161", "\u1112\u1161\u11ab",
              "c\u0327", "i\u0307", "\u0915\u093c", "Å", "\u212b", "\u2126", "\u00c5", "\u0344", "\u0958",
              "u\u031b\u0309", "\u0301", "\u0308e"]
SCRIPTS = [(0x0410, 0x044F), (0x0391, 0x03C9), (0x0621, 0x064A), (0x05D0, 0x05EA), (0x0905, 0x0939),
           (0x0E01, 0x0E30), (0x1780, 0x17B3), (0x0531, 0x0556), (0x10D0, 0x10FA), (0x4E00, 0x9FA5),
           (0xAC00, 0xD7A3), (0x3041, 0x3096), (0x30A1, 0x30FA), (0x00C0, 0x00FF), (0x0100, 0x017F)]
MARKS = ["\u0301", "\u0308", "\u093e", "\u093f", "\u094d", "\u0e31", "\u0e34", "\u17b6", "\u17c6", "\u064e",
         "\u0651", "\u05b7", "\u200d", "\ufe0f", "\u20e3"]
EMOJI = ["🦙", "🚀", "😁", "😶\u200d🌫️", "👨\u200d👩\u200d👧\u200d👦", "👍🏽", "👩🏿\u200d💻", "🏳️\u200d🌈",
         "🇩🇪", "🇯🇵🇺🇸", "1️⃣", "#️⃣", "❤️", "✅", "☕", "🧑\u200d🤝\u200d🧑", "🐈\u200d⬛", "😀😃😄", "🙏"]
DIGITS = ["0", "3", "33", "333", "3333", "33333", "1234567890", "3.14159", "1,000,000", "2024-06-01", "0x1F",
          "١٢٣", "०१२", "１２３", "²³", "½", "Ⅻ", "①②", "٣٣٣٣", "12a34", "v1.2.3", "-42", "+7", "1e-9"]
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", " \n", "\n ", " \t ",
          "\t\n", "\u00a0", "\u3000", "\u2009", "\u2028", "\u0085", "\u000b", "\u000c", "\ufeff", "\u200b",
          " \u00a0 ", "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n", "        ", "\r\r\n\n"]
PUNCT = [".", ",", "!", "?", "...", "!!!!!!", "??", "-", "--", "------", "=======", "—", "–", "«", "»", "¿", "¡",
         "、", "。", "「", "」", "‘", "’", "“", "”", "\"", "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\",
         "@", "#", "$", "%", "^", "&", "*", "_", "+", "=", "|", "~", "`", "```", "''''''", "\"\"\"\"", ";", ":",
         "§", "©", "®", "™", "°", "€", "£", "¥", "•", "→", "∑", "√", "∞", "≠", "\x01", "\x1b", "\x7f", "\u00ad",
         "\ue000", "\ufffd", "\u180e"]
CODE = ["def f(x):\n    return x**2\n", "{\"a\": [1, 2, {\"b\": null}]}", "<div class=\"x\">hi</div>",
        "https://example.com/a/b?c=d&e=f#g", "a_b-c.d", "int main(void) { return 0; }", "$ ls -la | grep x",
        "SELECT * FROM t WHERE id = 3;", "x += 1 // comment", "\tif (a && b) {\n\t\tc();\n\t}",
        "import numpy as np", "#!/bin/sh\necho \"$1\""]
ADDED = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<b>", "</b>", "<table>", "<s>", "</s>", "<unk>",
         "<|eot_id|>", "<end_of_turn>", "<start_of_turn>", "<|im_end|>", "<|im_start|>", "<|begin_of_text|>",
         "<|endoftext|>", "[INST]", "[/INST]", "<0x41>", "\u2581", "\u2581\u2581", "<pad>", "<bos>", "<eos>",
         "<unused0>", "<h1>", "<|fim_prefix|>", "<mask>", "<|", "|>", "<<SYS>>"]


def atom(r):
    k = r.random()
    if k < 0.22:
        w = r.choice(WORDS)
        return w.upper() if r.random() < 0.1 else w
    if k < 0.30:
        return r.choice(CONTRACTIONS)
    if k < 0.36:
        return r.choice(CJK)
    if k < 0.42:
        lo, hi = r.choice(SCRIPTS)
        s = rng_chars(r, lo, hi, r.randint(1, 8))
        if r.random() < 0.3:
            s += r.choice(MARKS)
        return s
    if k < 0.46:
        return r.choice(DECOMPOSED)
    if k < 0.53:
        return "".join(r.choice(EMOJI) for _ in range(r.randint(1, 3)))
    if k < 0.62:
        return r.choice(DIGITS) if r.random() < 0.7 else "".join(r.choice("0123456789") for _ in range(r.randint(1, 14)))
    if k < 0.75:
        return r.choice(SPACES)
    if k < 0.87:
        return "".join(r.choice(PUNCT) for _ in range(r.randint(1, 3)))
    if k < 0.92:
        return r.choice(CODE)
    if k < 0.97:
        return r.choice(ADDED)
    # any assigned code point of the BMP or a few old astral blocks (no surrogates, no NUL).
    # Unassigned ones are left out: a newer Unicode in the oracle could make them letters.
    while True:
        c = r.choice([r.randint(1, 0x2FFF), r.randint(0x3000, 0xD7FF), r.randint(0xE000, 0xFFFD),
                      r.randint(0x1F300, 0x1F64F), r.randint(0x1D400, 0x1D7FF), r.randint(0x10330, 0x1034A),
                      r.randint(0x20000, 0x2A6D6)])
        if (c < 0xD800 or c > 0xDFFF) and unicodedata.category(chr(c)) != "Cn":
            return chr(c)


def sep(r):
    k = r.random()
    if k < 0.45:
        return " "
    if k < 0.75:
        return ""
    return r.choice(SPACES)


def one(r):
    if r.random() < 0.03:  # a long one
        n = r.randint(60, 300)
    else:
        n = r.randint(1, 12)
    s = "".join(atom(r) + sep(r) for _ in range(n))
    if r.random() < 0.5:
        s = s.rstrip(" ") or s
    if r.random() < 0.15:
        s = r.choice(SPACES) + s
    return s


def main():
    n = int(sys.argv[1])
    r = random.Random(int(sys.argv[2]))
    excl = []
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            excl = [json.loads(l) for l in f if l.strip()]
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        s = one(r)
        if "\0" in s or any(e in s for e in excl):
            continue
        out.append(s)
    for s in out:
        sys.stdout.write(json.dumps(s, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
