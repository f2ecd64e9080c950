// llamacpp-perplexity.mjs - llama.cpp (through node-llama-cpp 3.21.1, CPU) as the reference for
// `salign perplexity` (tests/run-perplexity.sh): the same measurement as llama-perplexity's default
// mode, with llama.cpp computing the tokens and the next-token distributions and this script doing
// the counting:
//   - the file's text minus one trailing newline, tokenized by llama.cpp without special tokens,
//     BOS in front when the model asks for one;
//   - windows of CTX consecutive tokens (at least 2 of them), each evaluated on an empty sequence
//     with its first token replaced by BOS;
//   - at positions CTX/2 .. CTX-2 of each window, nll = -log p(next token), p from llama.cpp's
//     softmax of the raw logits (the greedy sampler filters nothing);
//   - after each window "[i]PPL," and at the end "Final estimate: PPL = x +/- y" with
//     y = PPL * sqrt((mean(nll^2) - mean(nll)^2) / (n - 1)), on stdout.
// The token ids go to TOKENS_OUT (comma-separated) so the test can check salign's tokenization.
//
// Setup (once, outside the repository): npm i -E node-llama-cpp@3.21.1
// Usage: NODE_PATH=<that folder>/node_modules node llamacpp-perplexity.mjs MODEL.gguf TEXT CTX TOKENS_OUT
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [modelPath, textPath, ctxArg, tokensOut] = process.argv.slice(2);
if (!tokensOut) {
  console.error("usage: node llamacpp-perplexity.mjs MODEL.gguf TEXT CTX TOKENS_OUT");
  process.exit(2);
}
const require = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const nCtx = Number(ctxArg);
let text = fs.readFileSync(textPath, "utf8");
if (text.endsWith("\n")) text = text.slice(0, -1);

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
const tokens = Array.from(model.tokenize(text, false));
if (bos != null) tokens.unshift(bos);
fs.writeFileSync(tokensOut, tokens.join(","));
if (tokens.length < 2 * nCtx) throw new Error(`${tokens.length} tokens, fewer than 2 windows of ${nCtx}`);

const context = await model.createContext({ contextSize: nCtx, batchSize: nCtx, threads: 1 });
const seq = context.getSequence();
const want = { generateNext: { probabilities: true, options: { temperature: 0 } } };
const first = Math.floor(nCtx / 2);
const nChunk = Math.floor(tokens.length / nCtx);
let nll = 0, nll2 = 0, count = 0;
let line = "";
for (let c = 0; c < nChunk; c++) {
  const win = tokens.slice(c * nCtx, (c + 1) * nCtx);
  if (bos != null) win[0] = bos;
  await seq.clearHistory();
  // the window's last token is not evaluated: nothing scores what it predicts
  const input = win.slice(0, nCtx - 1).map((t, i) => (i >= first ? [t, want] : t));
  const res = await seq.controlledEvaluate(input);
  for (let i = first; i < nCtx - 1; i++) {
    const probs = res[i]?.next?.probabilities;
    if (!probs) throw new Error(`chunk ${c + 1} position ${i}: no probabilities from llama.cpp`);
    const p = probs.get(win[i + 1]);
    if (!(p > 0)) throw new Error(`chunk ${c + 1} position ${i}: p(next) = ${p}`);
    const v = -Math.log(p);
    nll += v;
    nll2 += v * v;
    count++;
  }
  line += `[${c + 1}]${Math.exp(nll / count).toFixed(4)},`;
}
const mean = nll / count, ppl = Math.exp(mean), variance = nll2 / count - mean * mean;
console.log(line);
console.log(`Final estimate: PPL = ${ppl.toFixed(4)} +/- ${(variance > 0 ? ppl * Math.sqrt(variance / (count - 1)) : 0).toFixed(5)}`);
await context.dispose();
await model.dispose();
await llama.dispose();
