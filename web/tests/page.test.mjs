// The page in a real browser (Debian's Chromium through playwright-core), served from a
// static server on loopback, fed real firmware through its file input: the repository's demo
// image (slots of every flag), and from ../shared/fixtures an ESP32 app image, a merged image
// assembled here, and an Arduino ESP8266 image (those need the manifest's placeholders: they
// declare no slots). Every downloaded file must pass `esptool image-info` and the project's
// own `thinger-patch verify`, and hold the values. Screenshots of every state go to
// web/test-artifacts/.
//
// Flashing runs esptool-js for real against the project's ROM-loader simulator: a fake
// navigator.serial (the page's only seam to a device) carries the serial bytes over a
// WebSocket on loopback to crates/test-kit/examples/rom_loader_ws.rs (no chip here).

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  artifact,
  browser,
  esptoolImageInfo,
  fixture,
  haveChromium,
  inCi,
  mergedFlipper,
  PREBUILT,
  romBridgePath,
  serve,
  startRomBridge,
  WS_SERIAL,
  thingerPatch,
} from "./support.mjs";

const SECRET = "pw-canary-5521";
const CRED = "cred-canary-7788";

// Literals that occur once in the patchable data of each fixture (found with `strings`).
const FLIPPER_PLACEHOLDERS = {
  wifi_ssid: "https://httpbin.org/get", // 23 bytes
  wifi_password: "[ERROR] Failed to parse JSON data.", // 34 bytes
};
const ESPHOME_PLACEHOLDERS = {
  wifi_ssid: "check your static ip!", // 21 bytes
  wifi_password: "Firmware ONLY supports ESP8266!!!", // 33 bytes
};

let srv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "thinger-patch-web-test-"));

function skipWithoutBridge(t) {
  if (romBridgePath()) return false;
  if (inCi()) throw new Error("THINGER_PATCH_ROM_WS does not name the rom_loader_ws example (web/test.sh builds it)");
  t.skip("the ROM-loader bridge is not built (run web/test.sh)");
  return true;
}

function skipWithoutChromium(t) {
  if (haveChromium()) return false;
  if (inCi()) throw new Error("/usr/bin/chromium is missing (apt-get install chromium)");
  t.skip("no /usr/bin/chromium (apt-get install chromium)");
  return true;
}

before(async () => {
  srv = await serve();
});
after(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Serves `manifest` (an object; `null` for none, `undefined` for web/manifest.json). */
function manifest(m) {
  if (m === undefined) delete srv.routes["/manifest.json"];
  else srv.routes["/manifest.json"] = m === null ? null : JSON.stringify(m);
}

async function open(opts = {}) {
  const b = await browser(opts);
  await b.page.goto(srv.url);
  await b.page.waitForSelector('html[data-ready="1"]');
  return b;
}

async function pick(page, name, buffer) {
  await page.setInputFiles("#file", { name, mimeType: "application/octet-stream", buffer });
  await page.waitForFunction((n) => document.documentElement.dataset.loaded === n, name);
}

async function settled(page) {
  await page.waitForFunction(() => !document.documentElement.dataset.checking);
}

async function fill(page, key, value) {
  await page.fill(`input[name="${key}"]`, value);
  await settled(page);
}

/** Fills several fields, `[key, value]` pairs in order. */
async function fillAll(page, pairs) {
  for (const [k, v] of pairs) await fill(page, k, v);
}

async function fieldMsg(page, key) {
  return (await page.locator(`.field[data-key="${key}"] .msg`).textContent()).trim();
}

async function shot(page, name) {
  await page.screenshot({ path: artifact(name), fullPage: true });
}

async function download(page, name) {
  const label = (await page.locator("#download").textContent()).trim();
  assert.match(label, /^Download/, "the download button's label starts with Download");
  assert.equal(await page.locator("#download").isEnabled(), true);
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const file = path.join(tmp, dl.suggestedFilename());
  await dl.saveAs(file);
  assert.equal(dl.suggestedFilename(), name);
  return file;
}

/** `thinger-patch verify FILE` exits 0 and calls it valid. */
function assertVerifies(file) {
  const r = thingerPatch(["verify", "--json", file]);
  assert.equal(r.status, 0, `thinger-patch verify ${file}:\n${r.stdout}${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).valid, true);
}

function assertEsptool(file, chip, what) {
  const r = esptoolImageInfo(file, chip);
  assert.ok(r.ok, `esptool image-info (${what}) says invalid:\n${r.out}`);
}

/** Exactly one copy of `value` padded with NULs to `capacity`, and no trace of `literal`. */
function assertPlaced(bytes, value, capacity, literal) {
  const want = Buffer.alloc(capacity, 0);
  want.write(value, "utf8");
  assert.equal(count(bytes, want), 1, `${JSON.stringify(value)} NUL-padded to ${capacity} bytes`);
  assert.equal(count(bytes, Buffer.from(literal)), 0, `the literal ${JSON.stringify(literal)} is gone`);
}

function count(hay, needle) {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) n++;
  return n;
}

/** The CLI's message for the same value (its `(from --set)` origin aside). */
function cliProblem(args, startsWith) {
  const r = thingerPatch(["patch", ...args, "--dry-run"]);
  assert.equal(r.status, 1, `thinger-patch patch should refuse:\n${r.stderr}`);
  const line = r.stderr.split("\n").find((l) => l.includes(startsWith));
  assert.ok(line, `no CLI line with ${startsWith}:\n${r.stderr}`);
  return line.replace(" (from --set)", "");
}

// ---------------------------------------------------------------------------------------

describe("the page", () => {
  test("loads the manifest's firmware by itself and shows chip, kind and validity", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest(undefined);
    const b = await open();
    try {
      const { page } = b;
      await page.waitForFunction(() => document.documentElement.dataset.loaded === "esp32c3-demo-merged.bin");
      assert.equal(await page.textContent("#fi-kind"), "merged");
      assert.equal(await page.textContent("#fi-chip"), "esp32c3");
      assert.equal(await page.textContent("#fi-valid"), "valid");
      assert.match(await page.textContent("#offer-text"), /thinger-patch demo firmware 0\.1\.0 for the esp32c3/);
      assert.equal(await page.locator("#form input").count(), 8);
      await shot(page, "01-manifest-loaded.png");
    } finally {
      await b.close();
    }
  });

  test("demo slots: required, secret and too long, then a download that verifies", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest(null);
    const b = await open();
    try {
      const { page } = b;
      const demo = fs.readFileSync(path.join(PREBUILT, "esp32c3-demo.bin"));
      await pick(page, "esp32c3-demo.bin", demo);
      assert.equal(await page.textContent("#fi-kind"), "app-image");
      // Every field's name is its slot key; secrets are hidden.
      const names = await page.$$eval("#form input", (els) => els.map((e) => e.name).sort());
      assert.deepEqual(names, [
        "fw.version",
        "greeting",
        "thinger_credentials",
        "thinger_device",
        "thinger_host",
        "thinger_user",
        "wifi_password",
        "wifi_ssid",
      ]);
      assert.equal(await page.getAttribute('input[name="wifi_password"]', "type"), "password");
      assert.equal(await page.getAttribute('input[name="thinger_credentials"]', "type"), "password");
      assert.equal(await page.locator("#download").isDisabled(), true, "required values are missing");
      assert.match(await page.textContent("#pending"), /wifi_ssid/);

      // A too-long SSID: the CLI's message next to the field, nothing downloadable.
      const long = "x".repeat(40);
      await fill(page, "wifi_ssid", long);
      const msg = await fieldMsg(page, "wifi_ssid");
      assert.equal(
        msg,
        "slot wifi_ssid: the value is 40 bytes, the slot holds at most 32; shorten it or give the slot a larger capacity in the firmware",
      );
      const demoPath = path.join(PREBUILT, "esp32c3-demo.bin");
      assert.ok(cliProblem([demoPath, "--set", `wifi_ssid=${long}`], "slot wifi_ssid: the value is").endsWith(msg));
      assert.equal(await page.getAttribute('input[name="wifi_ssid"]', "aria-invalid"), "true");
      await fill(page, "wifi_password", "short");
      assert.match(await fieldMsg(page, "wifi_password"), /^slot wifi_password: wifi_password must be empty \(open network\), 8 to 63 bytes/);
      await fillAll(page, [
        ["thinger_user", "alice"],
        ["thinger_device", "kitchen-1"],
        ["thinger_credentials", CRED],
      ]);
      assert.equal(await page.locator("#download").isDisabled(), true, "two values still break a rule");
      await shot(page, "02-values-rejected.png");

      await fill(page, "wifi_ssid", "HomeNet");
      await fill(page, "wifi_password", SECRET);
      assert.equal(await fieldMsg(page, "wifi_ssid"), "");
      assert.equal(await page.locator("#download").isEnabled(), true);
      assert.equal(await page.locator("#flash").isEnabled(), true, "Chromium has Web Serial");
      await shot(page, "03-ready.png");

      const file = await download(page, "esp32c3-demo.kitchen-1.bin");
      await shot(page, "04-downloaded.png");
      assert.match(await page.textContent("#result"), /^Saved esp32c3-demo\.kitchen-1\.bin \(app-image, esp32c3, .* 5 of 8 value\(s\) set, verified valid\)/);
      assertEsptool(file, "esp32c3", "personalised demo");
      assertVerifies(file);
      const inspect = JSON.parse(thingerPatch(["inspect", "--json", file]).stdout);
      const slots = Object.fromEntries(inspect.slots.map((s) => [s.key, s]));
      assert.equal(slots.wifi_ssid.value, "HomeNet");
      assert.equal(slots.thinger_device.value, "kitchen-1");
      assert.equal(slots.wifi_password.value, "********");
      assert.equal(slots.wifi_password.state, "patched");
      assert.equal(slots.thinger_host.state, "default", "an empty field keeps the firmware's value");
      const bytes = fs.readFileSync(file);
      assert.equal(count(bytes, Buffer.from(`${SECRET}\0`)), 1);
      assert.equal(count(bytes, Buffer.from(`${CRED}\0`)), 1);
      assertNoLeak(b.log, [SECRET, CRED]);
    } finally {
      await b.close();
    }
  });

  test("an ESP32 app image (flipperhttp) with the manifest's placeholders", async (t) => {
    if (skipWithoutChromium(t)) return;
    const app = fixture(t, "flipperhttp/esp32c3-app.bin");
    if (!app) return;
    manifest({ name: "FlipperHTTP", version: "test", placeholders: FLIPPER_PLACEHOLDERS });
    const b = await open();
    try {
      const { page } = b;
      await pick(page, "flipper.bin", app);
      const file = await placeholderFlow(page, "flipper", FLIPPER_PLACEHOLDERS, 23, "flipper.personalised.bin");
      assertEsptool(file, "esp32c3", "personalised flipperhttp app");
      assertVerifies(file);
      const bytes = fs.readFileSync(file);
      assertPlaced(bytes, "HomeNet", 23, FLIPPER_PLACEHOLDERS.wifi_ssid);
      assertPlaced(bytes, SECRET, 34, FLIPPER_PLACEHOLDERS.wifi_password);
      assertNoLeak(b.log, [SECRET]);
    } finally {
      await b.close();
    }
  });

  test("a merged image: flipperhttp's bootloader, table and app at 0x0, 0x8000, 0x10000", async (t) => {
    if (skipWithoutChromium(t)) return;
    const merged = mergedFlipper(t);
    if (!merged) return;
    manifest({ name: "FlipperHTTP", version: "test", placeholders: FLIPPER_PLACEHOLDERS });
    const b = await open();
    try {
      const { page } = b;
      await pick(page, "flipper-merged.bin", merged);
      assert.equal(await page.textContent("#fi-kind"), "merged");
      const file = await placeholderFlow(page, "merged", FLIPPER_PLACEHOLDERS, 23, "flipper-merged.personalised.bin");
      const bytes = fs.readFileSync(file);
      assert.equal(bytes.length, merged.length);
      assertVerifies(file);
      // esptool reads one image at a time: the bootloader at 0x0 and the app at 0x10000.
      const boot = path.join(tmp, "merged-boot.bin");
      const app = path.join(tmp, "merged-app.bin");
      fs.writeFileSync(boot, bytes.subarray(0, 0x8000));
      fs.writeFileSync(app, bytes.subarray(0x10000));
      assertEsptool(boot, "esp32c3", "bootloader of the personalised merged image");
      assertEsptool(app, "esp32c3", "app of the personalised merged image");
      assert.deepEqual(bytes.subarray(0, 0x10000), merged.subarray(0, 0x10000), "bootloader and table unchanged");
      assertPlaced(bytes, "HomeNet", 23, FLIPPER_PLACEHOLDERS.wifi_ssid);
      assertPlaced(bytes, SECRET, 34, FLIPPER_PLACEHOLDERS.wifi_password);
    } finally {
      await b.close();
    }
  });

  test("an Arduino ESP8266 image (esphome, core 2.7)", async (t) => {
    if (skipWithoutChromium(t)) return;
    const image = fixture(t, "esphome/esp8266-core27.bin");
    if (!image) return;
    manifest({ name: "esphome", version: "test", placeholders: ESPHOME_PLACEHOLDERS });
    const b = await open();
    try {
      const { page } = b;
      await pick(page, "esphome.bin", image);
      assert.equal(await page.textContent("#fi-kind"), "arduino-esp8266");
      assert.equal(await page.textContent("#fi-chip"), "esp8266");
      const file = await placeholderFlow(page, "esphome", ESPHOME_PLACEHOLDERS, 21, "esphome.personalised.bin");
      assertVerifies(file);
      const bytes = fs.readFileSync(file);
      // esptool checks the eboot image at 0x0 of the file, and the app at 0x1000 on its own.
      assertEsptool(file, "esp8266", "eboot of the personalised Arduino image");
      const app = path.join(tmp, "esphome-app.bin");
      fs.writeFileSync(app, bytes.subarray(0x1000));
      assertEsptool(app, "esp8266", "app of the personalised Arduino image");
      assertPlaced(bytes, "HomeNet", 21, ESPHOME_PLACEHOLDERS.wifi_ssid);
      assertPlaced(bytes, SECRET, 33, ESPHOME_PLACEHOLDERS.wifi_password);
    } finally {
      await b.close();
    }
  });

  test("bad input: not firmware, a signed image, over the size cap", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest(null);
    const b = await open();
    try {
      const { page } = b;
      const junk = Buffer.from("this is a shopping list, not firmware\n".repeat(20));
      await page.setInputFiles("#file", { name: "notes.bin", mimeType: "application/octet-stream", buffer: junk });
      await page.waitForSelector("#file-msg:not([hidden])");
      const msg = (await page.textContent("#file-msg")).trim();
      assert.match(msg, /^notes\.bin: unrecognised firmware at offset 0x0/);
      // The CLI says the same about the same bytes.
      const junkPath = path.join(tmp, "notes.bin");
      fs.writeFileSync(junkPath, junk);
      const cli = thingerPatch(["verify", junkPath]);
      assert.equal(cli.status, 1);
      assert.equal(cli.stderr.trim(), `error: ${msg.replace("notes.bin", junkPath)}`);
      assert.equal(await page.locator("#values").isHidden(), true);
      assert.equal(await page.locator("#deliver").isHidden(), true, "nothing to download");
      await shot(page, "05-not-firmware.png");

      const signed = fixture(t, "esptool/secure/bootloader_signed_v2_rsa.bin");
      if (signed) {
        await pick(page, "signed.bin", signed);
        const m = (await page.textContent("#file-msg")).trim();
        assert.match(m, /^signed\.bin: the image at offset 0x[0-9a-f]+ is signed \(Secure Boot v2/);
        assert.match(m, /patch the unsigned image and sign it again with your key$/);
        assert.equal(await page.locator("#deliver").isHidden(), true);
        await shot(page, "06-signed.png");
      }

      const huge = path.join(tmp, "huge.bin");
      fs.writeFileSync(huge, "");
      fs.truncateSync(huge, 32 * 1024 * 1024 + 1);
      await page.setInputFiles("#file", huge);
      await page.waitForFunction(() => /more than/.test(document.getElementById("file-msg").textContent));
      assert.equal(
        (await page.textContent("#file-msg")).trim(),
        "huge.bin: the file is 33554433 bytes, more than 33554432 bytes: no ESP flash is that large; pick the firmware image (.bin, .bin.gz or .elf)",
      );
      assert.equal(await page.locator("#deliver").isHidden(), true);
      await shot(page, "07-too-large.png");
    } finally {
      await b.close();
    }
  });

  test("a browser without Web Serial gets the download and the one CLI command", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest(null);
    const b = await open({ initScripts: ["delete Navigator.prototype.serial;"] });
    try {
      const { page } = b;
      await pick(page, "esp32c3-demo-merged.bin", fs.readFileSync(path.join(PREBUILT, "esp32c3-demo-merged.bin")));
      assert.equal(await page.locator("#flash").isHidden(), true);
      assert.equal(await page.locator("#no-serial").isVisible(), true);
      assert.equal(await page.textContent("#cli-command"), "thinger-patch flash esp32c3-demo-merged.personalised.bin");
      assert.equal(await page.textContent("#cli-esptool"), "esptool --chip esp32c3 write-flash 0x0 esp32c3-demo-merged.personalised.bin");
      await fillAll(page, [
        ["wifi_ssid", "HomeNet"],
        ["thinger_user", "alice"],
        ["thinger_device", "garage"],
        ["thinger_credentials", CRED],
      ]);
      await download(page, "esp32c3-demo-merged.garage.bin");
      assert.equal(await page.textContent("#cli-command"), "thinger-patch flash esp32c3-demo-merged.garage.bin");
      await shot(page, "08-no-web-serial.png");
    } finally {
      await b.close();
    }
  });

  test("flashes through esptool-js into the ROM-loader simulator", async (t) => {
    if (skipWithoutChromium(t) || skipWithoutBridge(t)) return;
    manifest(null);
    const sim = await startRomBridge(["esp32c3"]);
    srv.setSerialBridge(sim.hostPort);
    const b = await open({ initScripts: [WS_SERIAL] });
    try {
      const { page } = b;
      await pick(page, "esp32c3-demo-merged.bin", fs.readFileSync(path.join(PREBUILT, "esp32c3-demo-merged.bin")));
      await fillAll(page, [
        ["wifi_ssid", "HomeNet"],
        ["wifi_password", SECRET],
        ["thinger_user", "alice"],
        ["thinger_device", "porch"],
        ["thinger_credentials", CRED],
      ]);
      await page.click("#flash");
      await page.waitForFunction(() => document.documentElement.dataset.flashed, null, { timeout: 120_000 });
      assert.match(await page.textContent("#flash-status"), /^Flashed esp32c3-demo-merged\.porch\.bin to the ESP32-C3 and verified it/);
      assert.equal(await page.$eval("#progress", (p) => p.value), 1);
      await shot(page, "12-flashed.png");
      const file = await download(page, "esp32c3-demo-merged.porch.bin");
      const written = fs.readFileSync(file);
      const flash = await sim.finish();
      // The personalised merged image at 0x0 of the simulated flash, byte for byte.
      assert.ok(written.equals(flash.subarray(0, written.length)), "the simulator holds the personalised image");
      const dumped = path.join(tmp, "flash-dump.bin");
      fs.writeFileSync(dumped, flash.subarray(0, written.length));
      assertVerifies(dumped);
      assert.equal(count(flash, Buffer.from(`${SECRET}\0`)), 1);
      assertNoLeak(b.log, [SECRET, CRED]);
    } finally {
      srv.setSerialBridge(null);
      sim.kill();
      await b.close();
    }
  });

  test("a cable pulled while writing: the page says so and offers a retry", async (t) => {
    if (skipWithoutChromium(t) || skipWithoutBridge(t)) return;
    manifest(null);
    const sim = await startRomBridge(["esp32c3", "--drop-after", "0"]);
    srv.setSerialBridge(sim.hostPort);
    const b = await open({ initScripts: [WS_SERIAL] });
    try {
      const { page } = b;
      await pick(page, "esp32c3-demo-merged.bin", fs.readFileSync(path.join(PREBUILT, "esp32c3-demo-merged.bin")));
      await fillAll(page, [
        ["wifi_ssid", "HomeNet"],
        ["thinger_user", "alice"],
        ["thinger_device", "porch"],
        ["thinger_credentials", CRED],
      ]);
      await page.click("#flash");
      try {
        await page.waitForSelector("#retry:not([hidden])", { timeout: 60_000 });
      } catch (e) {
        throw new Error(`no retry offered; the page says: ${await page.textContent("#flash-status")}`);
      }
      assert.equal((await page.textContent("#flash-status")).trim(), "Flashing was interrupted.");
      assert.match(await page.textContent("#flash-msg"), /^Flashing was interrupted: .*check the cable and the port, then retry\.$/s);
      await shot(page, "13-flash-interrupted.png");
      assertNoLeak(b.log, [CRED]);
    } finally {
      srv.setSerialBridge(null);
      sim.kill();
      await b.close();
    }
  });

  test("a flash that fails says nothing was written and offers a retry", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest(null);
    // The one seam to a device: navigator.serial. This port cannot be opened (as when the
    // cable is pulled between choosing and connecting).
    const fakeSerial = `
      Object.defineProperty(Navigator.prototype, "serial", { configurable: true, get() { return {
        requestPort: async () => ({
          getInfo: () => ({ usbVendorId: 0x303a, usbProductId: 0x1001 }),
          open: async () => { throw new DOMException("Failed to open serial port.", "NetworkError"); },
          close: async () => {},
          addEventListener() {}, removeEventListener() {},
          readable: null, writable: null,
        }),
        getPorts: async () => [],
        addEventListener() {}, removeEventListener() {},
      }; } });`;
    const b = await open({ initScripts: [fakeSerial] });
    try {
      const { page } = b;
      await pick(page, "esp32c3-demo-merged.bin", fs.readFileSync(path.join(PREBUILT, "esp32c3-demo-merged.bin")));
      await fillAll(page, [
        ["wifi_ssid", "HomeNet"],
        ["thinger_user", "alice"],
        ["thinger_device", "garage"],
        ["thinger_credentials", CRED],
      ]);
      await page.click("#flash");
      await page.waitForSelector("#retry:not([hidden])", { timeout: 60_000 });
      assert.equal((await page.textContent("#flash-status")).trim(), "Nothing was written.");
      assert.match(await page.textContent("#flash-msg"), /Failed to open serial port/);
      await shot(page, "09-flash-failed.png");
      // Retry runs the same path again.
      await page.click("#retry");
      await page.waitForSelector("#retry:not([hidden])", { timeout: 60_000 });
      assertNoLeak(b.log, [CRED]);
    } finally {
      await b.close();
    }
  });

  test("keyboard and phone: labelled fields, reachable buttons, no sideways scrolling", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest(null);
    const b = await open({ viewport: { width: 390, height: 844 } });
    try {
      const { page } = b;
      await pick(page, "esp32c3-demo.bin", fs.readFileSync(path.join(PREBUILT, "esp32c3-demo.bin")));
      const unlabelled = await page.$$eval("input", (els) => els.filter((e) => e.labels.length !== 1).map((e) => e.name || e.id));
      assert.deepEqual(unlabelled, []);
      // Tab from the file input walks through the fields in order.
      await page.focus("#file");
      const order = [];
      for (let i = 0; i < 14; i++) {
        await page.keyboard.press("Tab");
        order.push(await page.evaluate(() => document.activeElement.name || document.activeElement.id || document.activeElement.textContent));
      }
      assert.ok(order.includes("greeting") && order.includes("wifi_ssid"), order.join(" "));
      // Typed with the keyboard, validated as typed.
      await page.focus('input[name="thinger_device"]');
      await page.keyboard.type("bad name");
      await settled(page);
      assert.match(await fieldMsg(page, "thinger_device"), /Thinger's device id rule/);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
      await shot(page, "10-phone.png");
    } finally {
      await b.close();
    }
  });

  test("works offline once loaded (service worker)", async (t) => {
    if (skipWithoutChromium(t)) return;
    const own = await serve(); // stopped below: a real "offline", not an emulated one
    const b = await (async () => {
      const x = await browser({ serviceWorkers: "allow" });
      await x.page.goto(own.url);
      await x.page.waitForSelector('html[data-ready="1"]');
      return x;
    })();
    try {
      const { page } = b;
      await page.waitForFunction(() => document.documentElement.dataset.loaded === "esp32c3-demo-merged.bin");
      await page.evaluate(async () => {
        await navigator.serviceWorker.ready;
      });
      await page.waitForFunction(() => Boolean(navigator.serviceWorker.controller), null, { timeout: 20_000 });
      // Load once more under the worker so the manifest and firmware are in its cache too.
      await page.reload();
      await page.waitForFunction(() => document.documentElement.dataset.loaded === "esp32c3-demo-merged.bin");
      await own.close();
      await page.reload();
      await page.waitForSelector('html[data-ready="1"]');
      await page.waitForFunction(() => document.documentElement.dataset.loaded === "esp32c3-demo-merged.bin");
      await fill(page, "wifi_ssid", "x".repeat(33));
      assert.match(await fieldMsg(page, "wifi_ssid"), /holds at most 32/);
      await shot(page, "11-offline.png");
    } finally {
      await b.close();
      await own.close().catch(() => {});
    }
  });

  test("privacy: only the page's files, the manifest and the firmware are requested", async (t) => {
    if (skipWithoutChromium(t)) return;
    manifest({ name: "demo", version: "1", firmware: "firmware/esp32c3-demo-merged.bin" });
    const before = srv.requests.length;
    const b = await open();
    try {
      const { page } = b;
      await page.waitForFunction(() => document.documentElement.dataset.loaded === "esp32c3-demo-merged.bin");
      const loaded = b.log.requests.length;
      await fillAll(page, [
        ["wifi_ssid", "HomeNet"],
        ["wifi_password", SECRET],
        ["thinger_user", "alice"],
        ["thinger_device", "garage"],
        ["thinger_credentials", CRED],
      ]);
      await download(page, "esp32c3-demo-merged.garage.bin");
      assert.equal(b.log.requests.length, loaded, "typing and downloading make no request");
      const allowed = new Set([
        "/",
        "/style.css",
        "/app.js",
        "/thinger_patch_web.js",
        "/thinger_patch_web_bg.wasm",
        "/sw.js",
        "/manifest.json",
        "/firmware/esp32c3-demo-merged.bin",
      ]);
      for (const r of b.log.requests) {
        const u = new URL(r.url);
        if (u.protocol === "blob:" || u.protocol === "data:") continue;
        assert.equal(u.origin, srv.origin, `request to another origin: ${r.url}`);
        assert.ok(allowed.has(u.pathname), `unexpected request: ${r.method} ${r.url}`);
        assert.equal(u.search, "", `a query string: ${r.url}`);
        assert.equal(r.method, "GET");
      }
      assert.deepEqual(
        srv.requests.slice(before).map((r) => r.path).sort(),
        b.log.requests.filter((r) => r.url.startsWith("http")).map((r) => new URL(r.url).pathname).sort(),
        "the server saw exactly what the browser logged",
      );
      fs.writeFileSync(artifact("requests.json"), JSON.stringify(b.log.requests, null, 2));
      assert.equal(page.url(), srv.url, "no value in the URL");
      const stored = await page.evaluate(async () => ({
        local: localStorage.length,
        session: sessionStorage.length,
        cookie: document.cookie,
        idb: (await indexedDB.databases()).length,
        caches: (await caches.keys()).length,
      }));
      assert.deepEqual(stored, { local: 0, session: 0, cookie: "", idb: 0, caches: 0 });
      assertNoLeak(b.log, [SECRET, CRED]);
    } finally {
      await b.close();
    }
  });
});

/** A placeholder fixture through the form: a rejected too-long SSID, a hidden secret. */
async function placeholderFlow(page, tag, placeholders, ssidCap, expectName) {
  const names = await page.$$eval("#form input", (els) => els.map((e) => `${e.name}:${e.type}`).sort());
  assert.deepEqual(names, ["wifi_password:password", "wifi_ssid:text"]);
  const long = "y".repeat(ssidCap + 7);
  await fill(page, "wifi_ssid", long);
  const msg = await fieldMsg(page, "wifi_ssid");
  assert.equal(
    msg,
    `placeholder wifi_ssid: the value is ${ssidCap + 7} bytes, the placeholder holds at most ${ssidCap}; shorten it: a placeholder holds no more than its literal's length; a longer value needs firmware built with a longer placeholder (a file personalised before has no placeholder left: start again from the original file)`,
  );
  assert.equal(await page.locator("#download").isDisabled(), true);
  await fill(page, "wifi_password", SECRET);
  await shot(page, `${tag}-rejected.png`);
  await fill(page, "wifi_ssid", "HomeNet");
  assert.equal(await fieldMsg(page, "wifi_ssid"), "");
  await shot(page, `${tag}-ready.png`);
  return download(page, expectName);
}

/** No secret in a request, the console or a page error. */
function assertNoLeak(log, secrets) {
  const text = JSON.stringify(log);
  for (const s of secrets) assert.ok(!text.includes(s), `a secret reached the request log or console`);
}
