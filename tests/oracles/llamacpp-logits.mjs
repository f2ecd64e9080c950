// llamacpp-logits.mjs - llama.cpp (through node-llama-cpp 3.21.1, CPU) as the reference for the
// architecture tests (tests/test_archs.c): load a GGUF, evaluate a prompt, then decode greedily
// for STEPS steps, and record for every step the chosen token and the log-probabilities of the
// whole vocabulary.
//
// node-llama-cpp exposes no raw logits, only the softmax of them (computed in C++ from the raw
// logits: p = exp(l - max) / sum), so log p = l - logsumexp(l): the logits up to one constant per
// step, which the test removes by centering both sides. Exact as long as no p underflows (logit
// range < ~80, which the synthetic models guarantee).
//
// Setup (once, outside the repository): npm i -E node-llama-cpp@3.21.1
// Usage: NODE_PATH=<that folder>/node_modules node llamacpp-logits.mjs MODEL.gguf OUT.bin STEPS ID,ID,... [MODEL.gguf OUT.bin]...
// Further MODEL OUT pairs run one after the other in the same process, each model loaded into a
// fresh context as the first: the file-type tests run 16 files per architecture, and starting
// node and node-llama-cpp takes ~1.5 s of the ~3 s one small file takes (measured on 2 cores).
// OUT.bin: int32 n_vocab, int32 steps, then per step int32 token and n_vocab float32 log p (little-endian).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [modelPath, outPath, stepsArg, promptArg, ...more] = process.argv.slice(2);
if (!promptArg || more.length % 2) {
  console.error("usage: node llamacpp-logits.mjs MODEL.gguf OUT.bin STEPS ID,ID,... [MODEL.gguf OUT.bin]...");
  process.exit(2);
}
const jobs = [[modelPath, outPath]];
for (let i = 0; i < more.length; i += 2) jobs.push([more[i], more[i + 1]]);
const require = createRequire(path.join(process.env.NODE_PATH ?? process.cwd(), "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const steps = Number(stepsArg);
const prompt = promptArg.split(",").map(Number);
// CPU only, prebuilt binaries only (never compile), quiet.
const t0 = Date.now();
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
async function run(modelPath, outPath) {
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  // Match salign's test context: no flash attention, an f32 KV cache, one thread (more threads
  // only slow a model this small down, and one keeps the sums in a fixed order).
  const context = await model.createContext({
    contextSize: 512,
    batchSize: 512,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    threads: 1,
  });
  const seq = context.getSequence();
  if (process.env.ORACLE_TIMING) console.error(`setup ${Date.now() - t0} ms`);
  const want = { generateNext: { token: true, probabilities: true, options: { temperature: 0 } } };

  const out = fs.openSync(outPath, "w");
  let nVocab = 0;
  // ORACLE_PROMPT_ONE_BY_ONE=1: the prompt as single-token steps too. llama.cpp's batched product
  // for some block types (its repacked Q4_K GEMM) is not the same arithmetic as its one-token product,
  // while salign's batch and decode give the same values; the file-type tests compare on the one path
  // where llama.cpp is self-consistent.
  if (process.env.ORACLE_PROMPT_ONE_BY_ONE === "1")
    for (const t of prompt.slice(0, -1)) await seq.controlledEvaluate([t]);
  let input = process.env.ORACLE_PROMPT_ONE_BY_ONE === "1"
    ? [[prompt[prompt.length - 1], want]]
    : prompt.map((t, i) => (i === prompt.length - 1 ? [t, want] : t));
  for (let s = 0; s < steps; s++) {
    const res = await seq.controlledEvaluate(input);
    const next = res[input.length - 1]?.next;
    if (!next || next.token == null || !next.probabilities) throw new Error(`step ${s}: no output from llama.cpp`);
    // with the greedy sampler alone nothing is filtered: the map holds every token of the vocabulary
    if (s === 0) {
      nVocab = next.probabilities.size;
      fs.writeSync(out, new Int32Array([nVocab, steps]));
    }
    if (next.probabilities.size !== nVocab) throw new Error(`step ${s}: ${next.probabilities.size} probabilities, expected ${nVocab}`);
    const logp = new Float32Array(nVocab).fill(-Infinity);
    for (const [id, p] of next.probabilities) logp[id] = Math.log(p);
    fs.writeSync(out, new Int32Array([next.token]));
    fs.writeSync(out, logp);
    input = [[next.token, want]];
  }
  fs.closeSync(out);
  if (process.env.ORACLE_TIMING) console.error(`total ${Date.now() - t0} ms`);
  await context.dispose();
  await model.dispose();
}
for (const [m, o] of jobs) await run(m, o);
await llama.dispose();
