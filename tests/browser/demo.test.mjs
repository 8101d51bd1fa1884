// The first ten minutes: scripts/demo.sh, run as a newcomer runs it, prints a browser URL of the
// sample study's grid; Debian's headless Chromium opens exactly that URL and every <img> on the
// page loads (no login prompt, no broken tile). Run by scripts/ci/test-browser.sh, which gives:
//   DEMO_PORT, DEMO_ADMIN_PORT   free loopback ports for the demo's edge
//   ORTHANC_EDGE_BIN             the built edge (the demo builds the release one otherwise)
//   SHOT_DIR                     where the screenshot goes
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./chromium.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const scratch = mkdtempSync(path.join(tmpdir(), "edge-demo-test-"));
const printed = path.join(scratch, "printed.txt");
const SHOTS = process.env.SHOT_DIR || scratch;
let demo;
let log = "";

after(async () => {
  if (demo && demo.exitCode === null) {
    // The whole group: the script, its edge; its EXIT trap stops its Orthanc.
    process.kill(-demo.pid, "SIGTERM");
    await new Promise((r) => demo.once("exit", r));
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("the demo prints a grid URL that shows every thumbnail in Chromium", { timeout: 240000 }, async () => {
  demo = spawn("scripts/demo.sh", [], {
    cwd: repo,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DEMO_PRINT_FILE: printed, WORKDIR: path.join(scratch, "demo") },
  });
  demo.stdout.on("data", (d) => (log += d));
  demo.stderr.on("data", (d) => (log += d));
  const deadline = Date.now() + 200000;
  while (!existsSync(printed) || !readFileSync(printed, "utf8").includes("grid?token=")) {
    assert.ok(demo.exitCode === null, `the demo exited:\n${log.slice(-3000)}`);
    assert.ok(Date.now() < deadline, `no URL printed:\n${log.slice(-3000)}`);
    await sleep(250);
  }
  const text = readFileSync(printed, "utf8");
  const url = text.match(/http:\/\/127\.0\.0\.1:\d+\/studies\/[0-9a-f-]+\/grid\?token=\S+/)?.[0];
  assert.ok(url, `no grid URL in:\n${text}`);
  for (const what of ["Study ", "Config: ", " warm --url ", " token --sub "]) {
    assert.ok(text.includes(what), `the demo prints ${what.trim()}:\n${text}`);
  }
  // The edge starts right after printing.
  const ready = `${new URL(url).origin}/readyz`;
  for (;;) {
    const ok = await fetch(ready).then((r) => r.ok, () => false);
    if (ok) break;
    assert.ok(Date.now() < deadline, `the demo's edge never got ready:\n${log.slice(-3000)}`);
    await sleep(250);
  }
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const dialogs = [];
    page.on("dialog", (d) => {
      dialogs.push(d.type());
      d.dismiss().catch(() => {});
    });
    const resp = await page.goto(url);
    assert.equal(resp.status(), 200);
    await page.waitForFunction(
      () => document.images.length > 0 && [...document.images].every((i) => i.complete),
      null,
      { timeout: 60000 },
    );
    const images = await page.evaluate(() =>
      [...document.images].map((i) => ({ src: i.src, w: i.naturalWidth, h: i.naturalHeight })),
    );
    await page.screenshot({ path: path.join(SHOTS, "demo-grid.png"), fullPage: true });
    assert.ok(images.length >= 5, `the sample study has its series: ${images.length}`);
    for (const i of images) assert.ok(i.w > 0 && i.h > 0, `not shown: ${i.src.split("?")[0]}`);
    assert.deepEqual(dialogs, [], "no login prompt");
  } finally {
    await browser.close();
  }
});
