// A real browser (Debian's headless Chromium) on a page from one origin showing a grid of
// <img> previews from the edge on another origin, with a real Orthanc behind the edge.
// Started by scripts/ci/test-browser.sh, which provides:
//   EDGE_URL      the edge, e.g. http://127.0.0.1:PORT
//   PAGE_ORIGIN   the page server (python http.server), another port: another origin
//   PAGE_DIR      the folder that server serves (pages are written here)
//   MINT_KEY      an API key with scope `mint` (the web app's backend)
//   MANIFEST      the real-Orthanc manifest (scripts/dev/load_samples.py)
//   SHOT_DIR      optional: where to save screenshots
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launch } from "./chromium.mjs";

const env = (n) => {
  const v = process.env[n];
  if (!v) throw new Error(`${n} not set: run scripts/ci/test-browser.sh`);
  return v;
};
const EDGE = env("EDGE_URL");
const PAGE_ORIGIN = env("PAGE_ORIGIN");
const PAGE_DIR = env("PAGE_DIR");
const MINT_KEY = env("MINT_KEY");
const manifest = JSON.parse(readFileSync(env("MANIFEST"), "utf8"));
const SHOTS = process.env.SHOT_DIR || mkdtempSync(path.join(tmpdir(), "edge-shots-"));

// Instances Orthanc can render (JPEG 2000 without GDCM is a 415 by design).
const ids = Object.values(manifest.instances)
  .filter((i) => i.preview_status === 200)
  .map((i) => i.instance);

let browser;

before(async () => {
  assert.ok(ids.length >= 3, "the manifest has renderable instances");
  assert.notEqual(new URL(EDGE).origin, PAGE_ORIGIN, "page and edge are different origins");
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function mint(route, body) {
  const r = await fetch(`${EDGE}${route}`, {
    method: "POST",
    headers: { "X-Api-Key": MINT_KEY, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.equal(r.status, 200, `${route}: ${text}`);
  return JSON.parse(text);
}

function page(name, body) {
  writeFileSync(
    path.join(PAGE_DIR, name),
    `<!doctype html><meta charset="utf-8"><title>${name}</title>
<style>img{width:160px;height:160px;object-fit:contain;background:#222;margin:4px}</style>
<h1>${name}</h1><div id="grid"></div>
${body}`,
  );
  return `${PAGE_ORIGIN}/${name}`;
}

const imgTags = (srcs) => srcs.map((s) => `<img src="${s}" alt="preview">`).join("\n");

/** Open `url` in a fresh context; wait for every <img> to settle; report images and edge responses. */
async function visit(url, expected, shot) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const dialogs = [];
  p.on("dialog", (d) => {
    dialogs.push(d.type());
    d.dismiss().catch(() => {});
  });
  // Raw responses as they came off the wire (CDP), including those Chromium then blocks from
  // the page (a JSON 401 for an <img> is blocked by ORB and never becomes a page "response").
  const cdp = await context.newCDPSession(p);
  await cdp.send("Network.enable");
  const urls = new Map();
  const raw = [];
  cdp.on("Network.requestWillBeSent", (e) => urls.set(e.requestId, e.request.url));
  cdp.on("Network.responseReceivedExtraInfo", (e) => raw.push(e));
  await p.goto(url);
  await p.waitForFunction(
    (n) => document.images.length === n && [...document.images].every((i) => i.complete),
    expected,
    { timeout: 20000 },
  );
  const images = await p.evaluate(() =>
    [...document.images].map((i) => ({ src: i.src, w: i.naturalWidth, h: i.naturalHeight })),
  );
  await p.screenshot({ path: path.join(SHOTS, `${shot}.png`), fullPage: true });
  const cookies = await context.cookies(`${EDGE}/instances/x/preview`);
  await context.close();
  const responses = raw
    .map((e) => ({
      url: urls.get(e.requestId) || "",
      status: e.statusCode,
      headers: Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k.toLowerCase(), v])),
    }))
    .filter((r) => r.url.startsWith(EDGE));
  for (const r of responses) {
    assert.equal(r.headers["www-authenticate"], undefined, `WWW-Authenticate reached the browser: ${r.url}`);
  }
  assert.deepEqual(dialogs, [], "no prompt or dialog");
  return { images, responses, cookies };
}

test("signed links: every <img> loads, no 401", async () => {
  const signed = await mint("/auth/sign", { instances: ids, lifetime_s: 120, sub: "browser-test" });
  const srcs = signed.links.map((l) => `${EDGE}${l.url}`);
  const url = page("signed.html", imgTags(srcs));
  const { images, responses } = await visit(url, ids.length, "signed");
  assert.equal(images.length, ids.length);
  for (const i of images) assert.ok(i.w > 0 && i.h > 0, `not shown: ${i.src.split("?")[0]}`);
  assert.ok(responses.length >= ids.length);
  assert.deepEqual(responses.filter((r) => r.status === 401), []);
  assert.ok(responses.every((r) => r.status === 200 || r.status === 304));
});

test("session cookie: the page turns a backend-minted token into an HttpOnly cookie, then plain <img> URLs load", async () => {
  const { token } = await mint("/auth/session", { sub: "browser-test", studies: [manifest.study], lifetime_s: 300 });
  const srcs = ids.map((id) => `${EDGE}/instances/${id}/preview`);
  // What a web app does: its backend put `token` in the page; a credentialed CORS call stores
  // it as a cookie on the edge's host; the grid then uses bare URLs.
  const url = page(
    "cookie.html",
    `<script>
fetch(${JSON.stringify(EDGE + "/auth/session")}, {
  method: "POST", credentials: "include",
  headers: { Authorization: "Bearer " + ${JSON.stringify(token)} },
}).then((r) => {
  if (!r.ok) throw new Error("session: " + r.status);
  document.getElementById("grid").innerHTML = ${JSON.stringify(imgTags(srcs))};
});
</script>`,
  );
  const { images, responses, cookies } = await visit(url, ids.length, "cookie");
  for (const i of images) assert.ok(i.w > 0 && i.h > 0, `not shown: ${i.src}`);
  assert.deepEqual(responses.filter((r) => r.status === 401), []);
  const session = responses.find((r) => r.url.endsWith("/auth/session") && r.status === 200);
  assert.ok(session, "the credentialed CORS call succeeded (preflight + POST)");
  assert.equal(session.headers["access-control-allow-origin"], PAGE_ORIGIN);
  assert.equal(session.headers["access-control-allow-credentials"], "true");
  const c = cookies.find((c) => c.name === "orthanc_edge_session");
  assert.ok(c && c.httpOnly, "an HttpOnly session cookie is held for the edge");
  assert.ok(responses.filter((r) => r.url.includes("/preview")).every((r) => !r.url.includes("token=")));
});

test("no credentials: no image, no prompt, no WWW-Authenticate", async () => {
  const srcs = ids.map((id) => `${EDGE}/instances/${id}/preview`);
  const url = page("nocreds.html", imgTags(srcs));
  const { images, responses } = await visit(url, ids.length, "nocreds");
  for (const i of images) assert.equal(i.w, 0, `shown without credentials: ${i.src}`);
  const previews = responses.filter((r) => r.url.includes("/preview"));
  assert.ok(previews.length >= ids.length, JSON.stringify(responses.map((r) => [r.url, r.status])));
  assert.ok(previews.every((r) => r.status === 401), JSON.stringify(previews.map((r) => r.status)));
});

test("study grid page: every renderable series thumbnail shows, with a session token", async () => {
  const { token } = await mint("/auth/session", { sub: "grid-viewer", studies: [manifest.study], lifetime_s: 300 });
  const grid = await (
    await fetch(`${EDGE}/studies/${manifest.study}/grid.json`, { headers: { Authorization: `Bearer ${token}` } })
  ).json();
  // Signed links: every thumbnail URL carries its own short series-scoped token.
  for (const s of grid.series) assert.match(s.thumbnail, /[?&]token=/);
  const url = `${EDGE}/studies/${manifest.study}/grid?token=${encodeURIComponent(token)}`;
  const { images, responses } = await visit(url, grid.series.length, "study-grid");
  // The JPEG 2000 series cannot be rendered without GDCM (415 by design); all others must show.
  const j2kSeries = manifest.instances.j2k.series;
  const shown = images.filter((i) => !i.src.includes(j2kSeries));
  assert.equal(shown.length, grid.series.length - 1);
  for (const i of shown) assert.ok(i.w > 0 && i.h > 0, `not shown: ${i.src.split("?")[0]}`);
  assert.ok(!responses.some((r) => r.status === 401), "no 401");
});
