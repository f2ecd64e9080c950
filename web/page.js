"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
/* word-level diff of an original sentence and its correction: removed words struck, added marked */
function diff(a, b) {
  const x = a.split(/(\s+)/), y = b.split(/(\s+)/);
  const n = x.length, m = y.length;
  const L = Array.from({length: n + 1}, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const orig = el("div"), corr = el("div");
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      orig.append(x[i]); corr.append(y[j]); i++; j++;
    } else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) {
      corr.append(el("ins", "", y[j++]));
    } else {
      orig.append(el("del", "", x[i++]));
    }
  }
  const p = el("div", "pair");
  p.append(orig, corr);
  return p;
}
async function send(ev) {
  ev.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  $("q").value = "";
  $("go").disabled = true;
  $("log").append(el("div", "msg user", q));
  history.push({role: "user", content: q});
  const box = el("div", "msg answer"), text = el("span", "text"), pairs = el("div", "pairs"), meta = el("div", "meta");
  box.append(text, pairs, meta);
  $("log").append(box);
  const headers = {"Content-Type": "application/json"};
  if ($("key").value) headers.Authorization = "Bearer " + $("key").value;
  const body = {messages: history, stream: true, stream_options: {include_usage: true},
                salign: {mode: $("mode").value, show_original: true}};
  let answer = "";
  try {
    const res = await fetch("/v1/chat/completions", {method: "POST", headers, body: JSON.stringify(body)});
    if (!res.ok) {
      const e = await res.json().catch(() => ({}));
      throw new Error((e.error && e.error.message) || res.statusText);
    }
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let k;
      while ((k = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const c = JSON.parse(data);
        if (c.error) throw new Error(c.error.message);
        const ch = c.choices && c.choices[0];
        if (ch && ch.delta && ch.delta.content) {
          answer += ch.delta.content;
          text.textContent = answer;
        }
        const x = c.salign;
        if (x && x.original !== undefined) {
          const p = diff(x.original, x.correction);
          /* the annotator aligner kind: a failed sentence's status, and the reasoning folded in its correction */
          if (x.status && x.status !== "ok") p.lastChild.append(el("span", "note", ` (${x.status})`));
          if (x.reasoning) {
            const d = el("details");
            d.append(el("summary", "note", "reasoning"), x.reasoning);
            p.lastChild.append(d);
          }
          pairs.append(p);
        }
        if (x && x.total_ms !== undefined)
          meta.textContent = `${x.sentences} sentence(s), first visible after ${x.first_visible_ms.toFixed(0)} ms, ` +
                             `total ${x.total_ms.toFixed(0)} ms, stop: ${x.stop}`;
        if (c.usage) meta.textContent += `; ${c.usage.prompt_tokens} prompt + ${c.usage.completion_tokens} answer tokens`;
      }
    }
    history.push({role: "assistant", content: answer});
  } catch (e) {
    box.className = "msg err";
    text.textContent = "error: " + e.message;
    history.pop();
  }
  $("go").disabled = false;
}
$("f").addEventListener("submit", send);
$("opts").addEventListener("submit", (ev) => ev.preventDefault());
$("reset").addEventListener("click", () => { history.length = 0; $("log").textContent = ""; });
