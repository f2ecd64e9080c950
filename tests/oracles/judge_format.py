#!/usr/bin/env python3
"""judge_format.py - the oracle of salign judge's prompt rendering (tests/test_judge.c).

usage: judge_format.py CASES.json JUDGE-PROMPTS.json

CASES.json is a list of {"prompt", "responseA", "responseB"}. For each case and each of the tasks
safety and utility, the user message is the reference's template filled with Python's str.format
(exactly as htlou/stream-aligner's evaluation/utils.py does it), and the reference's cache key is
sha256(system + user). Prints a JSON list (ASCII, \\u escapes) of
{"safety": USER, "utility": USER, "safety_key": HEX, "utility_key": HEX}, one per case."""
import hashlib
import json
import sys

cases = json.load(open(sys.argv[1], encoding="utf-8"))
ref = json.load(open(sys.argv[2], encoding="utf-8"))
prompts = ref["prompts"]
out = []
for c in cases:
    row = {}
    for task in ("safety", "utility"):
        spec = ref["tasks"][task]
        system = prompts[spec["system"]]["text"]
        user = prompts[spec["user"]]["text"].format(prompt=c["prompt"], responseA=c["responseA"], responseB=c["responseB"])
        row[task] = user
        row[task + "_key"] = hashlib.sha256((system + user).encode("utf-8")).hexdigest()
    out.append(row)
json.dump(out, sys.stdout, ensure_ascii=True)
