// Shared by the page's tests and the benchmark: where things are, a static server on
// loopback that logs every request, Debian's Chromium driven by playwright-core, the
// project's verifiers (esptool image-info, thinger-patch verify/inspect).

import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = path.resolve(WEB, "..");
export const DIST = path.join(WEB, "dist");
export const ARTIFACTS = path.join(WEB, "test-artifacts");
export const FIXTURES = path.resolve(REPO, "../shared/fixtures/third-party");
export const PREBUILT = path.join(REPO, "examples/c-firmware/prebuilt");

export function inCi() {
  return ["true", "1", "yes"].includes(String(process.env.CI || "").trim().toLowerCase());
}

/**
 * The bytes of a shared fixture, or `null` after skipping the test `t` with a message when
 * the fixture folder is absent (under CI=true that is a failure). Fixtures are read where
 * they are, never copied into the repository.
 */
export function fixture(t, rel) {
  if (!fs.existsSync(FIXTURES)) {
    if (inCi()) throw new Error(`${FIXTURES} is absent, and CI=true makes that a failure, not a skip`);
    t.skip(`../shared/fixtures is absent (${FIXTURES})`);
    return null;
  }
  return fs.readFileSync(path.join(FIXTURES, rel));
}

export function artifact(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/** flipperhttp's bootloader, partition table and app merged at 0x0, 0x8000, 0x10000. */
export function mergedFlipper(t) {
  const boot = fixture(t, "flipperhttp/esp32c3-bootloader.bin");
  if (!boot) return null;
  const table = fixture(t, "flipperhttp/esp32c3-partitions.bin");
  const app = fixture(t, "flipperhttp/esp32c3-app.bin");
  return mergeAt([
    [0x0, boot],
    [0x8000, table],
    [0x10000, app],
  ]);
}

/** Parts at flash offsets, gaps filled with 0xFF (what esptool merge-bin writes). */
export function mergeAt(parts, size = 0) {
  const end = Math.max(size, ...parts.map(([o, b]) => o + b.length));
  const out = Buffer.alloc(end, 0xff);
  for (const [o, b] of parts) b.copy(out, o);
  return out;
}

// ---------------------------------------------------------------------------------------
// The static server
// ---------------------------------------------------------------------------------------

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
};

/**
 * Serves `root` on 127.0.0.1 (a free port). `routes` maps a path (`/manifest.json`) to a
 * Buffer/string served instead of the file, or to `null` for a 404. Every request is logged.
 */
export async function serve(root = DIST, { routes = {}, cache = "no-cache" } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    requests.push({ method: req.method, path: url.pathname, search: url.search });
    const send = (status, body, type) => {
      res.writeHead(status, {
        "Content-Type": type || "application/octet-stream",
        "Cache-Control": cache,
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    let p = decodeURIComponent(url.pathname);
    if (p.endsWith("/")) p += "index.html";
    if (Object.hasOwn(server.routes, p)) {
      const body = server.routes[p];
      if (body === null) return send(404, "not found", "text/plain");
      return send(200, body, TYPES[path.extname(p)]);
    }
    const file = path.join(root, path.normalize(p).replace(/^(\.\.[/\\])+/, ""));
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      return send(404, "not found", "text/plain");
    }
    send(200, fs.readFileSync(file), TYPES[path.extname(file)]);
  });
  server.routes = { ...routes };
  // A test seam for the serial port: `server.serialBridge = "127.0.0.1:PORT"` passes WebSocket
  // upgrades of /__serial through to the ROM-loader simulator's bridge, same origin (the page's
  // CSP allows connect-src 'self' only).
  server.serialBridge = null;
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname !== "/__serial" || !server.serialBridge) return socket.destroy();
    const [host, port] = server.serialBridge.split(":");
    const upstream = net.connect(Number(port), host, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join("\r\n") + "\r\n\r\n");
      if (head?.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    const drop = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on("error", drop);
    socket.on("error", drop);
    socket.on("close", () => upstream.end());
    upstream.on("close", () => socket.end());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    url: `${origin}/`,
    requests,
    routes: server.routes,
    setSerialBridge: (hostPort) => {
      server.serialBridge = hostPort;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}

// ---------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** A fresh Chromium profile (its own user-data-dir) with one page. */
export async function browser({ serviceWorkers = "block", viewport, initScripts = [] } = {}) {
  const { chromium } = await import("playwright-core");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinger-patch-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    acceptDownloads: true,
    serviceWorkers,
    viewport: viewport || { width: 1000, height: 1100 },
  });
  for (const s of initScripts) await context.addInitScript(s);
  const log = { requests: [], console: [], errors: [] };
  context.on("request", (r) =>
    log.requests.push({ url: r.url(), method: r.method(), type: r.resourceType(), post: r.postData() }),
  );
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => log.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.errors.push(String(e)));
  return {
    context,
    page,
    log,
    close: async () => {
      await context.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function haveChromium() {
  return fs.existsSync(CHROMIUM);
}

// ---------------------------------------------------------------------------------------
// The verifiers
// ---------------------------------------------------------------------------------------

export function esptoolPath() {
  const candidates = [
    process.env.THINGER_PATCH_ESPTOOL,
    path.join(REPO, ".venv/bin/esptool"),
    "/work/main/.venv/bin/esptool",
  ].filter(Boolean);
  return candidates.find((c) => fs.existsSync(c)) || "esptool";
}

/** `esptool --chip CHIP image-info FILE`: { ok, out }. */
export function esptoolImageInfo(file, chip) {
  const args = chip ? ["--chip", chip, "image-info", file] : ["image-info", file];
  const r = spawnSync(esptoolPath(), args, { encoding: "utf8" });
  const out = `${r.stdout || ""}${r.stderr || ""}`;
  if (r.error) throw new Error(`esptool could not run (${esptoolPath()}): ${r.error.message}`);
  // esptool prints "... (valid)" for every checksum/hash it checks and "(invalid ...)" otherwise.
  const ok = r.status === 0 && /valid/.test(out) && !/invalid/i.test(out);
  return { ok, out, status: r.status };
}

export function thingerPatchPath() {
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, "target");
  return process.env.THINGER_PATCH_BIN || path.join(target, "debug/thinger-patch");
}

/** Runs the project's CLI: { status, stdout, stderr }. */
export function thingerPatch(args) {
  const r = spawnSync(thingerPatchPath(), args, { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  if (r.error) throw new Error(`thinger-patch could not run (${thingerPatchPath()}): ${r.error.message}`);
  return r;
}

export function gitIgnored(file) {
  try {
    execFileSync("git", ["-C", REPO, "check-ignore", "-q", file]);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// The ROM-loader simulator behind a WebSocket (crates/test-kit/examples/rom_loader_ws.rs)
// ---------------------------------------------------------------------------------------

/** The bridge binary web/test.sh builds (THINGER_PATCH_ROM_WS), or null. */
export function romBridgePath() {
  const p = process.env.THINGER_PATCH_ROM_WS;
  return p && fs.existsSync(p) ? p : null;
}

/**
 * Starts the simulated chip: `args` as the example takes them (chip, --flash-at, --drop-after).
 * Resolves `{ hostPort, finish() }`; `finish()` resolves the simulated flash as a Buffer.
 */
export function startRomBridge(args) {
  const dump = path.join(os.tmpdir(), `thinger-patch-rom-${process.pid}-${Date.now()}.bin`);
  const child = spawn(romBridgePath(), [...args, "--dump", dump], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /^ws:\/\/([^\s]+)/m.exec(out);
      if (m && !child.started) {
        child.started = true;
        resolve({
          hostPort: m[1],
          finish: () =>
            new Promise((done, fail) => {
              child.on("exit", (code) => {
                if (code !== 0) return fail(new Error(`rom_loader_ws exited with ${code}`));
                const flash = fs.readFileSync(dump);
                fs.rmSync(dump, { force: true });
                done(flash);
              });
              child.stdin.end("finish\n");
            }),
          kill: () => child.kill(),
        });
      }
    });
  });
}

/**
 * A page init script: navigator.serial with one port whose bytes travel over a WebSocket to
 * the simulator (same origin, /__serial). DTR/RTS (setSignals) do nothing: the simulated chip
 * is always in its bootloader, as a pseudo-terminal has no modem lines.
 */
export const WS_SERIAL = `
(() => {
  class WsPort {
    constructor() { this.readable = null; this.writable = null; this.ws = null; }
    getInfo() { return { usbVendorId: 0x303a, usbProductId: 0x1001 }; }
    async open() {
      const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/__serial");
      ws.binaryType = "arraybuffer";
      await new Promise((ok, bad) => {
        ws.onopen = ok;
        ws.onerror = () => bad(new DOMException("Failed to open serial port.", "NetworkError"));
      });
      this.ws = ws;
      const lost = () => new DOMException("The device has been lost.", "NetworkError");
      this.readable = new ReadableStream({
        start(c) {
          ws.onmessage = (e) => c.enqueue(new Uint8Array(e.data));
          ws.onclose = () => { try { c.error(lost()); } catch {} };
        },
      });
      this.writable = new WritableStream({
        write(chunk) {
          if (ws.readyState !== WebSocket.OPEN) throw lost();
          ws.send(chunk);
        },
      });
    }
    async close() {
      this.ws?.close();
      this.ws = null;
      this.readable = null;
      this.writable = null;
    }
    async setSignals() {}
    async getSignals() { return {}; }
    addEventListener() {}
    removeEventListener() {}
  }
  const port = new WsPort();
  Object.defineProperty(Navigator.prototype, "serial", { configurable: true, get() { return {
    requestPort: async () => port,
    getPorts: async () => [port],
    addEventListener() {}, removeEventListener() {},
  }; } });
})();`;
