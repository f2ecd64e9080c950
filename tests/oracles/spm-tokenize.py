#!/usr/bin/python3
"""spm-tokenize.py MODEL < strings.jsonl > ids.jsonl

The oracle for salign's Llama 2 tokenizer: SentencePiece itself (Debian python3-sentencepiece,
0.1.97 when this was written) with the original tokenizer.model. Each input line is a JSON string;
each output line the JSON array of its ids, without BOS (what `salign tokenize --jsonl --no-bos`
prints). Run it with /usr/bin/python3: Debian's module is installed for the system Python only.
"""
import json
import sys

import sentencepiece

sp = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
out = []
for line in sys.stdin:
    if line.strip():
        out.append(json.dumps(sp.encode(json.loads(line), out_type=int), separators=(",", ":")))
sys.stdout.write("\n".join(out) + "\n")
