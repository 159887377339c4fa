// Benchmark (not a test): prints figures, asserts nothing but that the work succeeded.
//
//   node web/bench.mjs [ITERATIONS]        (after web/build.sh)
//
// 1. Personalise + re-seal + re-verify of a 4 MiB merged image (flipperhttp's bootloader,
//    table and app at 0x0/0x8000/0x10000, filled with 0xFF to 4 MiB, as `esptool merge-bin
//    --fill-flash-size 4MB` writes it; the repository's demo merged image when the shared
//    fixtures are absent) in Chromium, timed in the page, against the native library on the
//    same bytes in the same run (crates/web/examples/bench_native.rs, the same core_api calls).
//    "open" is what the page does when a file is picked (parse, verify, the checks' baseline);
//    "personalise" writes the values, re-seals and re-verifies. Target: wasm <= 3x native.
//    The native build hashes with the CPU's SHA instructions where it has them; a second
//    native run with sha2's portable code (RUSTFLAGS --cfg sha2_backend="soft", its own
//    target folder) shows how much of the gap that is (skip it with --no-soft).
// 2. Page load to interactive (the .wasm initialised, the picker wired: html[data-ready]),
//    with an empty HTTP cache (a fresh profile) and with the page's files cached, from a
//    server on loopback.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { browser, FIXTURES, mergeAt, PREBUILT, REPO, serve } from "./tests/support.mjs";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const N = Number(positional[0] || 7);
const SOFT = !process.argv.includes("--no-soft");
const MiB = 1 << 20;
const PLACEHOLDERS = {
  wifi_ssid: "https://httpbin.org/get",
  wifi_password: "[ERROR] Failed to parse JSON data.",
};
const DEMO_VALUES = { wifi_ssid: "HomeNet", thinger_user: "alice", thinger_device: "bench", thinger_credentials: "cred-bench" };

function image() {
  const dir = path.join(FIXTURES, "flipperhttp");
  if (fs.existsSync(dir)) {
    const read = (f) => fs.readFileSync(path.join(dir, f));
    return {
      what: "flipperhttp merged, filled to 4 MiB",
      bytes: mergeAt(
        [
          [0x0, read("esp32c3-bootloader.bin")],
          [0x8000, read("esp32c3-partitions.bin")],
          [0x10000, read("esp32c3-app.bin")],
        ],
        4 * MiB,
      ),
      placeholders: PLACEHOLDERS,
      values: { wifi_ssid: "HomeNet", wifi_password: "pw-bench-5521" },
    };
  }
  const demo = fs.readFileSync(path.join(PREBUILT, "esp32c3-demo-merged.bin"));
  return {
    what: "demo merged (fixtures absent), filled to 4 MiB",
    bytes: mergeAt([[0, demo]], 4 * MiB),
    placeholders: {},
    values: DEMO_VALUES,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${ms.toFixed(1)} ms`;

async function inBrowser(img) {
  const srv = await serve(undefined, { routes: { "/manifest.json": null, "/bench.bin": img.bytes } });
  const b = await browser();
  try {
    await b.page.goto(srv.url);
    await b.page.waitForSelector('html[data-ready="1"]');
    return await b.page.evaluate(
      async ({ n, placeholders, values }) => {
        const tp = await import("./thinger_patch_web.js");
        await tp.default();
        const bytes = new Uint8Array(await (await fetch("bench.bin")).arrayBuffer());
        const open = [];
        const personalize = [];
        const check = [];
        for (let i = 0; i < n; i++) {
          let t = performance.now();
          const f = new tp.FirmwareFile("bench.bin", bytes, { placeholders });
          open.push(performance.now() - t);
          t = performance.now();
          if (!f.check(values).ok) throw new Error("values refused");
          check.push(performance.now() - t);
          t = performance.now();
          const out = f.personalize(values);
          personalize.push(performance.now() - t);
          if (!out.report.valid) throw new Error("not valid");
          f.free();
        }
        return { open, personalize, check, ua: navigator.userAgent };
      },
      { n: N, placeholders: img.placeholders, values: img.values },
    );
  } finally {
    await b.close();
    await srv.close();
  }
}

function native(img, soft = false) {
  const file = path.join(os.tmpdir(), `thinger-patch-bench-${process.pid}.bin`);
  fs.writeFileSync(file, img.bytes);
  try {
    const args = ["run", "--quiet", "--release", "--locked", "-p", "thinger-patch-web", "--example", "bench_native", "--", file, String(N)];
    for (const [k, v] of Object.entries(img.placeholders)) args.push("--placeholder", `${k}=${v}`);
    for (const [k, v] of Object.entries(img.values)) args.push("--set", `${k}=${v}`);
    const env = { ...process.env };
    if (soft) {
      env.RUSTFLAGS = `${env.RUSTFLAGS || ""} --cfg sha2_backend="soft"`.trim();
      env.CARGO_TARGET_DIR = path.join(env.CARGO_TARGET_DIR || path.join(REPO, "target"), "bench-soft-sha");
    }
    return JSON.parse(execFileSync("cargo", args, { cwd: REPO, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }));
  } finally {
    fs.rmSync(file, { force: true });
  }
}

async function pageLoad() {
  const srv = await serve(undefined, { cache: "public, max-age=3600" });
  const uncached = [];
  const cached = [];
  let wasmTransfer = {};
  try {
    for (let i = 0; i < N; i++) {
      const b = await browser();
      try {
        await b.page.goto(srv.url);
        await b.page.waitForSelector('html[data-ready="1"]');
        uncached.push(await b.page.evaluate(() => window.__tpReadyAt));
        await b.page.waitForFunction(() => document.documentElement.dataset.loaded);
        await b.page.goto(srv.url);
        await b.page.waitForSelector('html[data-ready="1"]');
        cached.push(await b.page.evaluate(() => window.__tpReadyAt));
        wasmTransfer = await b.page.evaluate(() => {
          const e = performance.getEntriesByType("resource").find((r) => r.name.endsWith(".wasm"));
          return { transferSize: e?.transferSize, encodedBodySize: e?.encodedBodySize };
        });
      } finally {
        await b.close();
      }
    }
  } finally {
    await srv.close();
  }
  return { uncached, cached, wasmTransfer };
}

const img = image();
console.log(`image: ${img.what}, ${img.bytes.length} bytes; ${N} iterations, medians`);
const info = JSON.parse(fs.readFileSync(path.join(REPO, "web/dist/build-info.json"), "utf8"));
console.log(`wasm:  ${info.wasmBytes} bytes raw, ${info.wasmGzipBytes} bytes gzip -9`);
const n = native(img);
const w = await inBrowser(img);
const wOpen = median(w.open);
const wPers = median(w.personalize);
console.log(`browser: ${w.ua}`);
console.log(`open        native ${fmt(n.openMs)}   wasm in Chromium ${fmt(wOpen)}   ratio ${(wOpen / n.openMs).toFixed(2)}x`);
console.log(`personalise native ${fmt(n.personalizeMs)}   wasm in Chromium ${fmt(wPers)}   ratio ${(wPers / n.personalizeMs).toFixed(2)}x (target <= 3x)`);
if (SOFT) {
  const soft = native(img, true);
  console.log(`native with portable SHA-256: open ${fmt(soft.openMs)} (wasm ${(wOpen / soft.openMs).toFixed(2)}x), personalise ${fmt(soft.personalizeMs)} (wasm ${(wPers / soft.personalizeMs).toFixed(2)}x)`);
}
console.log(`check of every value as typed (wasm in Chromium): ${fmt(median(w.check))}`);
const load = await pageLoad();
console.log(`page load to interactive: uncached ${fmt(median(load.uncached))}, cached ${fmt(median(load.cached))} (wasm transfer when cached: ${JSON.stringify(load.wasmTransfer)})`);
