// page.mjs URL SCREENSHOT - the page at / of `salign serve` in headless Chromium (playwright-core,
// Debian's chromium): type a question, send it, wait for the streamed answer and at least one
// original/correction pair; print {answer, pairs, meta, console, csp} as JSON; save a screenshot.
import path from "node:path";
import { createRequire } from "node:module";

const base = (process.env.NODE_PATH ?? "").split(path.delimiter)[0] || process.cwd();
const require = createRequire(path.join(base, "_.js"));
const { chromium } = require("playwright-core");

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
const out = { console: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.console.push(`pageerror: ${e.message}`));
  page.on("request", (r) => out.requests.push(r.url()));
  const res = await page.goto(url);
  out.csp = res.headers()["content-security-policy"] ?? null;
  await page.fill("#q", "Lily had a red ball.");
  await page.click("#go");
  await page.waitForSelector(".answer .pair", { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector(".answer .meta")?.textContent.includes("total"), null, { timeout: 30000 });
  out.answer = await page.textContent(".answer .text");
  out.pairs = await page.$$eval(".answer .pair", (ps) => ps.map((p) => [p.children[0].textContent, p.children[1].textContent]));
  out.marks = await page.$$eval(".answer .pair del, .answer .pair ins", (xs) => xs.length);
  out.meta = await page.textContent(".answer .meta");
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
