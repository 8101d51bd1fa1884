// One cold study grid in headless Chromium (Debian's, driven by tests/browser's playwright-core):
// a fresh browser and profile open URL, and the time from navigation to the last thumbnail
// decoded (every <img> complete, naturalWidth > 0 counted) is appended as a JSON line to OUT.
// Run by scripts/bench/grid_browser.sh, which starts the servers.
//
//   node grid_browser.mjs measure LABEL URL OUT [API_KEY]   # API_KEY sent as X-Api-Key
//   node grid_browser.mjs page EDGE STUDY API_KEY OUT       # Orthanc's grid page, written to OUT
//   node grid_browser.mjs report OUT                        # medians per label, Markdown
import { createRequire } from "node:module";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tests/browser/package.json"));
const TIMEOUT_MS = 60_000;
const GOAL = 0.5;
const FLAGS = "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update " +
  "--disable-sync --no-first-run";

async function measure(label, url, out, key) {
  const { chromium } = require("playwright-core");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: TIMEOUT_MS,
    args: FLAGS.split(" "),
  });
  try {
    // Tall enough that no lazy <img> waits for a scroll; the edge's grid forbids scripts (CSP).
    const context = await browser.newContext({
      viewport: { width: 1280, height: 2400 },
      bypassCSP: true,
      extraHTTPHeaders: key ? { "X-Api-Key": key } : {},
    });
    const page = await context.newPage();
    const response = await page.goto(url, { waitUntil: "commit", timeout: TIMEOUT_MS });
    if (response.status() !== 200) throw new Error(`${url}: HTTP ${response.status()}`);
    // performance.now() counts from the navigation's start.
    const done = await page.waitForFunction(
      () => {
        const imgs = [...document.images];
        return imgs.length > 0 && document.readyState !== "loading" && imgs.every((i) => i.complete)
          ? { ms: performance.now(), images: imgs.length, decoded: imgs.filter((i) => i.naturalWidth > 0).length }
          : false;
      },
      null,
      { polling: 5, timeout: TIMEOUT_MS },
    );
    // Where the time went (Resource Timing, ms from the navigation's start): the page's last
    // byte, then the first image request sent and the last image's last byte.
    const timing = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const imgs = performance.getEntriesByType("resource").filter((e) => e.initiatorType === "img");
      return {
        page_ms: nav ? nav.responseEnd : null,
        first_img_ms: imgs.length ? Math.min(...imgs.map((e) => e.startTime)) : null,
        last_img_ms: imgs.length ? Math.max(...imgs.map((e) => e.responseEnd)) : null,
        // Per image: request sent, first byte, last byte, and the server's own Server-Timing.
        img_timing: imgs.map((e) => [Math.round(e.requestStart), Math.round(e.responseStart), Math.round(e.responseEnd),
          e.serverTiming.map((t) => `${t.name}=${t.duration.toFixed(1)}`).join(" ")]),
      };
    });
    const result = { label, ...(await done.jsonValue()), ...timing };
    appendFileSync(out, JSON.stringify(result) + "\n");
    const t = (x) => (x == null ? "-" : x.toFixed(0));
    console.error(`grid_browser: ${label}: ${result.ms.toFixed(0)} ms (page ${t(result.page_ms)}, images ` +
      `${t(result.first_img_ms)}-${t(result.last_img_ms)}), ${result.decoded}/${result.images} decoded`);
  } finally {
    await browser.close();
  }
}

// The representative instance of each series, in the edge's order, on the edge's grid layout and
// loaded as the edge's page loads them (the first EAGER at once, the rest lazily); the images are
// Orthanc's own /preview, through the nginx that serves the page.
const EAGER = 64; // the edge's grid.prefetch default
async function page(edge, study, key, out) {
  const r = await fetch(`${edge}/studies/${study}/grid.json`, { headers: { "X-Api-Key": key } });
  if (r.status !== 200) throw new Error(`grid JSON: HTTP ${r.status}`);
  const imgs = (await r.json()).series
    .filter((s) => s.representative)
    .map((s, i) => `<figure><img src="/instances/${s.representative}/preview" alt="series" ` +
      `loading="${i < EAGER ? "eager" : "lazy"}" decoding="async" width="128" height="128"></figure>`);
  writeFileSync(out, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Orthanc previews</title>
<style>body{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#eee}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(128px,1fr));gap:.75rem}
figure{margin:0;background:#000;padding:.25rem;border-radius:4px;text-align:center}
img{max-width:100%;height:auto;display:block;margin:auto}</style></head>
<body><h1>Orthanc previews</h1><main>
${imgs.join("\n")}
</main></body></html>
`);
}

function report(out) {
  const runs = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const labels = [...new Set(runs.map((r) => r.label))];
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const rows = labels.map((label) => {
    const mine = runs.filter((r) => r.label === label);
    return { label, ms: median(mine.map((r) => r.ms)), all: mine.map((r) => r.ms.toFixed(0)),
             decoded: mine.map((r) => `${r.decoded}/${r.images}`),
             page: median(mine.map((r) => r.page_ms ?? NaN)), last: median(mine.map((r) => r.last_img_ms ?? NaN)) };
  });
  const ref = rows.find((r) => r.label.startsWith("Orthanc"));
  console.log("| grid | median ms | rounds ms | thumbnails decoded | × Orthanc's previews | median page ms | median last image ms |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const ratio = ref ? `${(r.ms / ref.ms).toFixed(2)}×` : "";
    console.log(`| ${r.label} | ${r.ms.toFixed(0)} | ${r.all.join(", ")} | ${r.decoded.join(", ")} | ${ratio} ` +
      `| ${r.page.toFixed(0)} | ${r.last.toFixed(0)} |`);
  }
  const edge = rows.find((r) => r.label.includes("render.mode = edge"));
  const goal = `goal: the edge in mode edge ≤ ${GOAL}× Orthanc's previews behind nginx`;
  if (!edge || !ref) console.log(`\n${goal}: not measured`);
  else console.log(`\n${goal}: **${(edge.ms / ref.ms).toFixed(2)}×**: ${edge.ms / ref.ms <= GOAL ? "met" : "NOT met"}`);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === "measure" && rest.length >= 3) await measure(...rest);
else if (cmd === "page" && rest.length === 4) await page(...rest);
else if (cmd === "report" && rest.length === 1) report(rest[0]);
else {
  console.error("usage: grid_browser.mjs measure LABEL URL OUT [API_KEY] | page EDGE STUDY API_KEY OUT | report OUT");
  process.exit(2);
}
