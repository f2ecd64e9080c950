#!/usr/bin/env python3
"""annotator_prompts.py SHARED OUT.json - the expected annotator prompts for tests/test_annotator.c.

Written for salign, independently of its C code: takes the reference's SYSTEM_PROMPT and USER_PROMPT
from SHARED/reference/annotator-prompt.json (checking their sha256), fills USER_PROMPT with Python's
own str.format, wraps system and user message in each family's published chat format (Llama 3,
ChatML as Qwen2/2.5 use it, Gemma, which has no system role: the system prompt opens the user turn,
followed by a blank line), and has HF tokenizers.js (tests/oracles/hf-tokenize.mjs, npm
@huggingface/tokenizers 0.2.0; NODE_PATH must point at it) tokenize the whole text with the tokenizers
of SHARED/models/tokenizers, special tokens spelled out in the text. Run:
  NODE_PATH=~/.cache/salign-oracles/node_modules python3 tests/oracles/annotator_prompts.py ../shared tests/data/annotator-prompts.json
"""
import hashlib, json, os, subprocess, sys

shared, out = sys.argv[1], sys.argv[2]
ref = json.load(open(os.path.join(shared, "reference", "annotator-prompt.json"), encoding="utf-8"))
S = ref["prompts"]["SYSTEM_PROMPT"]
U = ref["prompts"]["USER_PROMPT"]
for p in (S, U):
    b = p["text"].encode("utf-8")
    assert len(b) == p["bytes"] and hashlib.sha256(b).hexdigest() == p["sha256"]

FORMATS = {  # name: (tokenizer folder, our template name, wrapper)
    "llama3": ("llama3", "llama3",
               lambda s, u: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + s +
               "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n" + u +
               "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
    "chatml": ("qwen3", "chatml",
               lambda s, u: "<|im_start|>system\n" + s + "<|im_end|>\n<|im_start|>user\n" + u +
               "<|im_end|>\n<|im_start|>assistant\n"),
    "gemma": ("gemma3", "gemma",
              lambda s, u: "<bos><start_of_turn>user\n" + s + "\n\n" + u + "<end_of_turn>\n<start_of_turn>model\n"),
}
CASES = [
    {"prompt": "How do I bake bread?", "prefix": "", "last": "Mix flour and water."},
    {"prompt": "Is {this} a \"test\"? Ça va — naïve 日本語", "prefix": "First, preheat the oven. Then wait.",
     "last": "  Use 2.5 cups [of] flour!\n"},
]
cases = []
for fmt, (tokdir, tmpl, wrap) in FORMATS.items():
    for c in CASES:
        user = U["text"].format(**c)
        cases.append({"template": tmpl, "tokenizer": tokdir, **c, "user": user, "text": wrap(S["text"], user)})
oracle = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf-tokenize.mjs")
for tokdir in sorted({c["tokenizer"] for c in cases}):
    sel = [c for c in cases if c["tokenizer"] == tokdir]
    inp = "".join(json.dumps(c["text"]) + "\n" for c in sel)
    res = subprocess.run(["node", oracle, os.path.join(shared, "models", "tokenizers", tokdir)], input=inp.encode(),
                         capture_output=True, check=True).stdout.decode().split("\n")
    for c, line in zip(sel, res):
        c["ids"] = json.loads(line)
doc = {"provenance": "tests/oracles/annotator_prompts.py: the reference's annotator prompt (htlou/stream-aligner @ fb9df04, "
       "via ../shared/reference/annotator-prompt.json) filled by Python str.format and wrapped in each family's chat format; "
       "ids from HF tokenizers.js (npm @huggingface/tokenizers 0.2.0, add_special_tokens false, special tokens spelled out "
       "in the text) with ../shared/models/tokenizers/{llama3,qwen3,gemma3}",
       "system_sha256": S["sha256"], "user_sha256": U["sha256"], "cases": cases}
with open(out, "w", encoding="utf-8") as f:  # one case per line
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False)[:-1]
    f.write(head + ',\n "cases": [\n' + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]}\n")
