// The slot format's golden vectors (docs/slot-format.md §6, parsed from the document at test
// time, as device/rust/tests/golden.rs does) run against the .wasm under Node, so the
// browser's front end and the Rust ones cannot drift apart. Also: the demo firmware's
// standard slots are those vectors byte for byte, as the .wasm finds them.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { before, test } from "node:test";
import { DIST, PREBUILT, REPO } from "./support.mjs";

let tp;

before(async () => {
  tp = await import(path.join(DIST, "thinger_patch_web.js"));
  tp.initSync({ module: fs.readFileSync(path.join(DIST, "thinger_patch_web_bg.wasm")) });
});

/** `{ A: { heading, bytes }, ... }` from §6 of the spec. */
function goldenVectors() {
  const text = fs.readFileSync(path.join(REPO, "docs/slot-format.md"), "utf8");
  const section = text.split("## 6. Golden vectors")[1].split("\n## ")[0];
  const vectors = {};
  const re = /\*\*([A-Z])\.\*\*([\s\S]*?)```\n([\s\S]*?)```/g;
  for (const m of section.matchAll(re)) {
    const [, letter, heading, hex] = m;
    const announced = Number(/(\d+) bytes:/.exec(heading)[1]);
    const bytes = [];
    for (const line of hex.trim().split("\n")) {
      const [offset, data] = line.split(":");
      assert.equal(Number.parseInt(offset, 16), bytes.length, `vector ${letter}: offsets run on`);
      bytes.push(...data.trim().split(/\s+/).map((b) => Number.parseInt(b, 16)));
    }
    assert.equal(bytes.length, announced, `vector ${letter}: ${announced} bytes announced`);
    vectors[letter] = { heading: heading.replace(/\s+/g, " "), bytes: Uint8Array.from(bytes) };
  }
  return vectors;
}

const hex = (b) => Buffer.from(b).toString("hex");

// The declarations of §6 (key, capacity, flags, default) and the state each vector shows.
const DECLARED = {
  A: { key: "wifi_ssid", capacity: 32, flags: 0x0002, value: "", patched: false },
  B: { key: "thinger_host", capacity: 64, flags: 0, value: "iot.thinger.io", patched: false },
  C: { key: "wifi_password", capacity: 64, flags: 0x0003, value: "", patched: false, patchedWith: "correct horse" },
  D: { key: "x", capacity: 1, flags: 0, value: "", patched: false },
};

test("the spec has vectors A to D, each announced with its length", () => {
  const v = goldenVectors();
  assert.deepEqual(Object.keys(v), ["A", "B", "C", "D"]);
  assert.deepEqual(
    Object.values(v).map((x) => x.bytes.length),
    [84, 116, 116, 52],
  );
});

test("the .wasm encodes each declaration to its vector's bytes", () => {
  const v = goldenVectors();
  for (const [letter, d] of Object.entries(DECLARED)) {
    const compiled = tp.encodeRecord(d.key, d.capacity, d.flags, d.patched, d.value);
    const want = d.patchedWith ? tp.patchRecord(compiled, d.patchedWith) : compiled;
    assert.equal(hex(want), hex(v[letter].bytes), `vector ${letter}`);
  }
});

test("the .wasm decodes each vector as declared, secrets masked", () => {
  const v = goldenVectors();
  for (const [letter, d] of Object.entries(DECLARED)) {
    const r = tp.decodeRecord(v[letter].bytes);
    assert.equal(r.status, "ok", `vector ${letter}`);
    assert.equal(r.key, d.key);
    assert.equal(r.capacity, d.capacity);
    assert.equal(r.flags, d.flags);
    assert.equal(r.recordLen, v[letter].bytes.length);
    assert.equal(r.state, d.patchedWith ? "patched" : "default");
    const value = d.patchedWith || d.value;
    assert.equal(r.value, r.secret && value ? "********" : value, `vector ${letter} value`);
  }
  // C is SECRET | REQUIRED: its value never comes out of the .wasm.
  const c = tp.decodeRecord(v.C.bytes);
  assert.deepEqual([c.secret, c.required, c.flagNames], [true, true, ["secret", "required"]]);
});

test("patching changes only the state byte and the value field", () => {
  const v = goldenVectors();
  const compiled = tp.encodeRecord("wifi_password", 64, 3, false, "");
  const after = tp.patchRecord(compiled, "correct horse");
  const changed = [...compiled.keys()].filter((i) => compiled[i] !== after[i]);
  assert.ok(changed.every((i) => i === 9 || i >= 48), `changed bytes ${changed}`);
  assert.equal(hex(after), hex(v.C.bytes));
  // A damaged copy is reported, not patched.
  const broken = v.A.bytes.slice();
  broken[15] = 1; // the reserved byte
  assert.equal(tp.decodeRecord(broken).status, "malformed");
  assert.match(tp.decodeRecord(broken).problem, /reserved byte is 0x01, expected 0/);
  assert.throws(() => tp.patchRecord(v.D.bytes, "toolong"), /holds at most 1/);
});

test("the demo firmware's wifi_ssid and thinger_host records are vectors A and B", () => {
  const v = goldenVectors();
  const bytes = fs.readFileSync(path.join(PREBUILT, "esp32c3-demo.bin"));
  const file = new tp.FirmwareFile("esp32c3-demo.bin", bytes, {});
  try {
    const fields = Object.fromEntries(file.slots().fields.map((f) => [f.key, f]));
    for (const [key, letter] of [
      ["wifi_ssid", "A"],
      ["thinger_host", "B"],
    ]) {
      const at = fields[key].fileOffsets[0];
      assert.equal(hex(bytes.subarray(at, at + v[letter].bytes.length)), hex(v[letter].bytes), key);
    }
    // Personalised through the .wasm, the record reads back as the spec's patch rule says.
    const out = file.personalize({
      wifi_ssid: "HomeNet",
      thinger_user: "alice",
      thinger_device: "dev1",
      thinger_credentials: "c",
    });
    const at = fields.wifi_ssid.fileOffsets[0];
    const record = out.bytes.subarray(at, at + 84);
    assert.equal(hex(record), hex(tp.patchRecord(v.A.bytes, "HomeNet")));
  } finally {
    file.free();
  }
});
