// openai-client.mjs BASE_URL API_KEY MODE MAX_TOKENS QUESTION - the real `openai` npm client against
// `salign serve`: one streamed and one non-streamed chat completion (greedy), printed as one JSON
// object: {stream, stream_chunks, stream_finish, stream_usage, full, full_finish, usage}.
// NODE_PATH names the oracle cache's node_modules (tests/run-serve.sh installs openai there).
import path from "node:path";
import { createRequire } from "node:module";

const base = (process.env.NODE_PATH ?? "").split(path.delimiter)[0] || process.cwd();
const require = createRequire(path.join(base, "_.js"));
const lib = await import(require.resolve("openai"));
const OpenAI = lib.default ?? lib.OpenAI;

const [baseURL, apiKey, mode, maxTokens, question] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const body = {
  model: "salign",
  messages: [{ role: "user", content: question }],
  temperature: 0,
  max_tokens: Number(maxTokens),
  salign: { mode }, // an extension field: the client passes it through
};
const out = { stream: "", stream_chunks: 0, stream_finish: null, stream_usage: null };
const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  out.stream_chunks++;
  if (chunk.usage) out.stream_usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta?.content) out.stream += c.delta.content;
  if (c.finish_reason) out.stream_finish = c.finish_reason;
}
const full = await client.chat.completions.create(body);
out.full = full.choices[0].message.content;
out.full_finish = full.choices[0].finish_reason;
out.usage = full.usage;
out.trace = full.salign; // the extension: align --json's trace
out.models = (await client.models.list()).data.map((m) => m.id);
console.log(JSON.stringify(out));
