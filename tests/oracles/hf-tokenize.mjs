// hf-tokenize.mjs DIR < strings.jsonl > ids.jsonl
// The oracle for salign's HF tokenizers: HF tokenizers.js (npm @huggingface/tokenizers, pinned to
// 0.2.0 by tests/run-oracle-tokenizers.sh, which installs it outside the repository and points
// NODE_PATH at it). DIR holds tokenizer.json and tokenizer_config.json. Each input line is a JSON
// string; each output line is the JSON array of its ids, with no special tokens added
// (add_special_tokens: false), i.e. what `salign tokenize --jsonl --no-bos` prints.
// Written for salign; it does what ../shared/oracles/hf-tokenize.mjs does, so the comparison also
// runs where that folder is absent.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const base = (process.env.NODE_PATH ?? "").split(path.delimiter)[0] || process.cwd();
const require = createRequire(path.join(base, "_.js"));
const lib = await import(require.resolve("@huggingface/tokenizers"));
const Tokenizer = lib.Tokenizer ?? lib.default?.Tokenizer;
const dir = process.argv[2];
const read = (name) => JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"));
const tok = new Tokenizer(read("tokenizer.json"), read("tokenizer_config.json"));
const out = [];
for (const line of fs.readFileSync(0, "utf8").split("\n")) {
  if (line.trim() === "") continue;
  out.push(JSON.stringify(Array.from(tok.encode(JSON.parse(line), { add_special_tokens: false }).ids)));
}
fs.writeFileSync(1, out.join("\n") + "\n");
