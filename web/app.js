// The page. Every decision about firmware (what a file is, which values it takes, whether a
// value is allowed and why not, the personalised bytes, where they go on the flash, whether
// the connected chip fits) comes from the Rust library through thinger_patch_web.js; this
// module only moves bytes and text between the DOM, the .wasm and esptool-js.
//
// Privacy: the only requests are this page's own files, manifest.json and the firmware it
// names. Values live in the form fields and in the .wasm's memory while a call runs; they are
// never put in the URL, in storage or in the console.
//
// `navigator.serial` is the only way to a device (tests can provide their own).

import init, * as tp from "./thinger_patch_web.js";

const $ = (id) => document.getElementById(id);

const state = {
  manifest: null,
  /** { name, bytes, fromManifest } of the file shown. */
  source: null,
  /** The opened file (a wasm object). */
  file: null,
  fields: [],
  touched: new Set(),
  check: null,
  checkTimer: 0,
  flashing: false,
};

// ---------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------

async function main() {
  await init();
  $("version").textContent = tp.version();
  wirePicker();
  wireDeliver();
  registerServiceWorker();
  document.documentElement.dataset.ready = "1";
  window.__tpReadyAt = performance.now();
  await loadManifest();
}

function registerServiceWorker() {
  // Keeps the page working offline once it has been loaded (see sw.js).
  if ("serviceWorker" in navigator && location.protocol !== "file:") {
    navigator.serviceWorker.register("./sw.js").catch(() => {
      // Offline use is a convenience: the page works without it.
    });
  }
}

// ---------------------------------------------------------------------------------------
// The manifest: what the firmware author offers on this page
// ---------------------------------------------------------------------------------------

async function loadManifest() {
  let manifest;
  try {
    const r = await fetch("manifest.json", { cache: "no-cache", credentials: "omit" });
    if (!r.ok) return; // a page without a manifest only offers the file picker
    manifest = await r.json();
  } catch {
    return;
  }
  if (!manifest || typeof manifest !== "object") return;
  state.manifest = manifest;
  if (typeof manifest.firmware === "string" && manifest.firmware) {
    const label = [manifest.name, manifest.version].filter(Boolean).join(" ");
    $("offer-text").textContent =
      `This page offers ${label || "a firmware"}${manifest.chip ? ` for the ${manifest.chip}` : ""}. ` +
      "It is loaded below; you can also pick another file.";
    $("offer").hidden = false;
    await loadFromManifest();
  }
}

async function loadFromManifest() {
  const m = state.manifest;
  const url = new URL(m.firmware, location.href);
  const name = decodeURIComponent(url.pathname.split("/").pop() || "firmware.bin");
  let bytes;
  try {
    const r = await fetch(url, { credentials: "omit" });
    if (!r.ok) throw new Error(`the server answered ${r.status} ${r.statusText}`.trim());
    bytes = new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    reset();
    fileError(`${name}: cannot load it from ${url.pathname}: ${e.message}`);
    return;
  }
  openFile(name, bytes, true);
}

// ---------------------------------------------------------------------------------------
// Picking a file
// ---------------------------------------------------------------------------------------

function wirePicker() {
  $("file").addEventListener("change", (ev) => {
    const f = ev.target.files && ev.target.files[0];
    if (f) pickFile(f);
  });
  $("offer-load").addEventListener("click", () => loadFromManifest());
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const f = ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (f) pickFile(f);
  });
  // Dropped anywhere else, a file would replace the page: catch it here too.
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const f = ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (f) pickFile(f);
  });
}

async function pickFile(f) {
  // The size is checked before the file is read.
  const tooLarge = tp.fileSizeProblem(f.name, f.size);
  if (tooLarge) {
    reset();
    fileError(tooLarge);
    return;
  }
  let bytes;
  try {
    bytes = new Uint8Array(await f.arrayBuffer());
  } catch (e) {
    reset();
    fileError(`${f.name}: cannot read it: ${e.message}`);
    return;
  }
  openFile(f.name, bytes, false);
}

function openFile(name, bytes, fromManifest) {
  reset();
  const options = {
    placeholders: (state.manifest && state.manifest.placeholders) || {},
    // The manifest's placeholders describe its own firmware; another file may not hold them.
    placeholdersOptional: !fromManifest,
    chip: (fromManifest && state.manifest && state.manifest.chip) || undefined,
  };
  let file;
  try {
    file = new tp.FirmwareFile(name, bytes, options);
  } catch (e) {
    fileError(e.message);
    return;
  }
  state.file = file;
  state.source = { name, bytes, fromManifest };
  const info = file.info();
  showInfo(info);
  if (info.refusal) {
    fileError(info.refusal);
    document.documentElement.dataset.loaded = name;
    return;
  }
  if (info.manifestProblem) fileError(info.manifestProblem);
  const slots = file.slots();
  buildForm(slots);
  $("values").hidden = false;
  $("deliver").hidden = false;
  prepareDelivery(info);
  runCheck();
  document.documentElement.dataset.loaded = name;
}

/** Forgets the file shown (and every value typed for it). */
function reset() {
  if (state.file) state.file.free();
  state.file = null;
  state.source = null;
  state.fields = [];
  state.touched.clear();
  state.check = null;
  clearTimeout(state.checkTimer);
  $("form").replaceChildren();
  for (const id of ["values", "deliver", "file-info", "damaged", "flash-box", "result", "no-serial"]) {
    $(id).hidden = true;
  }
  setMsg($("file-msg"), "");
  setMsg($("general-msg"), "");
  $("warnings").replaceChildren();
  delete document.documentElement.dataset.loaded;
  delete document.documentElement.dataset.valid;
}

function fileError(message) {
  setMsg($("file-msg"), message);
}

function setMsg(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

function showInfo(info) {
  $("fi-name").textContent = info.name;
  $("fi-kind").textContent = info.format + (info.compression ? ` (${info.compression})` : "");
  $("fi-chip").textContent = info.chip || "unknown";
  $("fi-size").textContent = `${info.fileSize.toLocaleString("en")} bytes`;
  $("fi-valid").textContent = info.valid ? "valid" : `INVALID: ${info.problems.join("; ")}`;
  const notes = [...info.notes];
  for (const img of info.images) {
    if (img.signature) notes.push(`${img.role} at 0x${img.offset.toString(16)}: signed (${img.signature})`);
  }
  if (info.notFlashable) notes.push(info.notFlashable);
  if (info.placeholdersAbsent.length) {
    notes.push(`not in this file, so not asked for: ${info.placeholdersAbsent.join(", ")}`);
  }
  $("fi-notes").replaceChildren(...notes.map((n) => li(n)));
  $("file-info").hidden = false;
}

function li(text) {
  const el = document.createElement("li");
  el.textContent = text;
  return el;
}

// ---------------------------------------------------------------------------------------
// The form: one field per slot or placeholder the library lists
// ---------------------------------------------------------------------------------------

function buildForm(slots) {
  const form = $("form");
  state.fields = slots.fields;
  const nodes = slots.fields.map((f, i) => field(f, `f${i}`));
  if (!nodes.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "This file declares no slots, so there is nothing to fill in.";
    nodes.push(p);
  }
  form.replaceChildren(...nodes);
  const damaged = $("damaged");
  damaged.replaceChildren(
    ...slots.damaged.map((d) =>
      li(`record at 0x${d.address.toString(16).padStart(8, "0")} (file offset 0x${d.fileOffset.toString(16)}): ${d.problem}`),
    ),
  );
  damaged.hidden = slots.damaged.length === 0;
}

function field(f, id) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  wrap.dataset.key = f.key;

  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = f.key;
  const tags = [];
  if (f.required) tags.push("required");
  if (f.secret) tags.push("secret");
  if (f.kind !== "slot") tags.push(f.kind);
  if (tags.length) {
    const t = document.createElement("span");
    t.className = "tags";
    t.textContent = ` · ${tags.join(" · ")}`;
    label.append(t);
  }

  const input = document.createElement("input");
  input.id = id;
  input.name = f.key;
  input.type = f.secret ? "password" : "text";
  input.autocomplete = f.secret ? "new-password" : "off";
  input.spellcheck = false;
  input.setAttribute("autocapitalize", "off");
  input.setAttribute("autocorrect", "off");
  // Browsers' password managers must not pick values up from this form.
  input.setAttribute("data-lpignore", "true");
  input.setAttribute("aria-describedby", `${id}-hint ${id}-msg`);
  if (f.required) input.setAttribute("aria-required", "true");
  if (f.value) input.placeholder = f.secret ? `${f.value} (kept when left empty)` : f.value;
  input.addEventListener("input", () => {
    state.touched.add(f.key);
    scheduleCheck();
  });
  input.addEventListener("blur", () => {
    // Leaving a filled field shows its problems; the value did not change, so the buttons
    // keep their state (disabling them here would swallow the click that caused the blur).
    if (input.value && !state.touched.has(f.key)) {
      state.touched.add(f.key);
      if (!document.documentElement.dataset.checking) runCheck();
    }
  });

  const row = document.createElement("div");
  row.className = "row";
  row.append(input);
  if (f.secret) {
    const show = document.createElement("button");
    show.type = "button";
    show.className = "secondary";
    show.textContent = "Show";
    show.setAttribute("aria-controls", id);
    show.setAttribute("aria-pressed", "false");
    show.setAttribute("aria-label", `Show ${f.key}`);
    show.addEventListener("click", () => {
      const visible = input.type === "password";
      input.type = visible ? "text" : "password";
      show.textContent = visible ? "Hide" : "Show";
      show.setAttribute("aria-pressed", String(visible));
    });
    row.append(show);
  }

  const hint = document.createElement("p");
  hint.id = `${id}-hint`;
  hint.className = "hint";
  const parts = [];
  if (f.description) parts.push(f.description);
  if (f.rule) parts.push(`Must be ${f.rule}.`);
  parts.push(`At most ${f.capacity} bytes.`);
  if (!f.secret && f.value) parts.push(`Now: “${f.value}”.`);
  else if (!f.secret && f.usual) parts.push(`Usually “${f.usual}”.`);
  hint.textContent = parts.join(" ");

  const msg = document.createElement("p");
  msg.id = `${id}-msg`;
  msg.className = "msg error";
  msg.setAttribute("aria-live", "polite");

  wrap.append(label, row, hint, msg);
  return wrap;
}

function formValues() {
  const values = {};
  for (const el of $("form").elements) {
    if (el.name) values[el.name] = el.value;
  }
  return values;
}

function scheduleCheck(delay = 120) {
  // Until the check has run, nothing may be downloaded or flashed.
  $("download").disabled = true;
  $("flash").disabled = true;
  document.documentElement.dataset.checking = "1";
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(runCheck, delay);
}

function runCheck() {
  delete document.documentElement.dataset.checking;
  if (!state.file) return;
  const c = state.file.check(formValues());
  state.check = c;
  const missing = [];
  for (const wrap of $("form").querySelectorAll(".field")) {
    const key = wrap.dataset.key;
    const problems = c.fields[key] || [];
    const input = wrap.querySelector("input");
    const shown = state.touched.has(key) && problems.length > 0;
    setMsg(wrap.querySelector(".msg"), shown ? problems.join(" ") : "");
    input.setAttribute("aria-invalid", String(shown));
    if (problems.length && !shown) missing.push(key);
  }
  setMsg($("general-msg"), c.general.join("\n"));
  $("download").disabled = !c.ok;
  $("flash").disabled = !c.ok || state.flashing;
  $("pending").textContent = c.ok
    ? ""
    : missing.length
      ? `Download and flashing wait for: ${missing.join(", ")}.`
      : "Download and flashing wait until every value passes.";
  document.documentElement.dataset.valid = String(c.ok);
}

// ---------------------------------------------------------------------------------------
// Download and flash
// ---------------------------------------------------------------------------------------

function wireDeliver() {
  $("download").addEventListener("click", download);
  $("flash").addEventListener("click", flash);
  $("retry").addEventListener("click", flash);
  $("form").addEventListener("submit", (ev) => ev.preventDefault());
}

function hasWebSerial() {
  return "serial" in navigator && navigator.serial && typeof navigator.serial.requestPort === "function";
}

function prepareDelivery(info) {
  const serial = hasWebSerial();
  $("flash").hidden = !serial || Boolean(info.notFlashable);
  if (!serial) showCommands(expectedName(), state.source.bytes);
}

function expectedName() {
  // Only for the command shown before anything is downloaded; the download names itself.
  const n = state.source.name;
  const dot = n.indexOf(".", 1);
  return dot > 0 ? `${n.slice(0, dot)}.personalised${n.slice(dot)}` : `${n}.personalised`;
}

function showCommands(fileName, bytes) {
  const c = tp.flashCommands(fileName, bytes);
  $("cli-command").textContent = c.thingerPatch;
  $("cli-esptool").textContent = c.esptool || "";
  $("cli-alt").hidden = !c.esptool;
  $("no-serial").hidden = false;
}

/** The personalised file, or `null` after showing why not. */
function personalized() {
  if (!state.file) return null;
  try {
    return state.file.personalize(formValues());
  } catch (e) {
    setMsg($("general-msg"), e.message);
    return null;
  }
}

function download() {
  const out = personalized();
  if (!out) return;
  const url = URL.createObjectURL(new Blob([out.bytes], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = out.fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
  showResult(out, "Saved");
  if (!hasWebSerial()) showCommands(out.fileName, out.bytes);
}

function showResult(out, verb) {
  const set = out.slots.filter((s) => s.set).length;
  setMsg(
    $("result"),
    `${verb} ${out.fileName} (${out.format}, ${out.chip || "unknown chip"}, ${out.size.toLocaleString("en")} bytes, ` +
      `${set} of ${out.slots.length} value(s) set, verified valid).`,
  );
  $("warnings").replaceChildren(...out.warnings.map((w) => li(`warning: ${w}`)));
}

const quietTerminal = { clean() {}, write() {}, writeLine() {} };

async function flash() {
  if (state.flashing) return;
  const out = personalized();
  if (!out) return;
  state.flashing = true;
  $("flash").disabled = true;
  $("retry").hidden = true;
  setMsg($("flash-msg"), "");
  $("flash-box").hidden = false;
  const progress = $("progress");
  progress.value = 0;
  const status = (text) => {
    $("flash-status").textContent = text;
  };
  let transport = null;
  let writing = false;
  try {
    const route = tp.flashRoute(out.fileName, out.bytes);
    status("Choose the board’s serial port…");
    const port = await navigator.serial.requestPort();
    const { ESPLoader, Transport } = await import("./vendor/esptool-js.js");
    transport = new Transport(port, false);
    const loader = new ESPLoader({
      transport,
      baudrate: 460800,
      romBaudrate: 115200,
      terminal: quietTerminal,
      debugLogging: false,
    });
    status("Connecting to the board’s bootloader (hold BOOT and press RESET if it does not answer)…");
    await loader.main();
    const detected = loader.chip.CHIP_NAME;
    tp.checkChip(out.fileName, route.chip, detected);
    let table;
    if (route.needsTable) {
      status(`Connected to an ${detected}. Reading its partition table…`);
      table = await loader.readFlash(route.tableOffset, route.tableLen);
    }
    const plan = tp.flashPlan(out.fileName, out.bytes, table);
    const sizes = plan.parts.map((p) => p.len);
    const total = sizes.reduce((a, b) => a + b, 0);
    const before = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    status(`Connected to an ${detected}. Writing ${plan.parts.map((p) => `${p.what} at 0x${p.offset.toString(16)}`).join(", ")}…`);
    writing = true;
    await loader.writeFlash({
      fileArray: plan.parts.map((p) => ({ data: p.data, address: p.offset })),
      flashMode: "keep",
      flashFreq: "keep",
      flashSize: "keep",
      eraseAll: false,
      compress: true,
      reportProgress: (i, written, all) => {
        progress.value = (before[i] + (all ? (written / all) * sizes[i] : 0)) / total;
      },
      calculateMD5Hash: (image) => tp.md5Hex(image),
    });
    writing = false;
    progress.value = 1;
    status("Written and verified (MD5). Restarting the board…");
    await loader.after("hard_reset");
    status(`Flashed ${out.fileName} to the ${detected} and verified it; the board restarted.`);
    showResult(out, "Flashed");
    document.documentElement.dataset.flashed = out.fileName;
  } catch (e) {
    if (e && e.name === "NotFoundError" && !writing) {
      status("No serial port was chosen; nothing was written.");
    } else if (writing) {
      status("Flashing was interrupted.");
      setMsg(
        $("flash-msg"),
        `Flashing was interrupted: ${errorText(e)}. The board may not start until it is flashed completely: ` +
          "check the cable and the port, then retry.",
      );
      $("retry").hidden = false;
    } else {
      status("Nothing was written.");
      setMsg($("flash-msg"), errorText(e));
      $("retry").hidden = false;
    }
  } finally {
    if (transport) {
      try {
        await transport.disconnect();
      } catch {
        // The port may be gone (cable pulled): nothing left to close.
      }
    }
    state.flashing = false;
    runCheck();
  }
}

function errorText(e) {
  return (e && (e.message || String(e))) || "unknown error";
}

main().catch((e) => {
  setMsg($("file-msg"), `This page could not start: ${errorText(e)}`);
});
