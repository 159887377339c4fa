//! WebAssembly bindings of thinger-patch for the browser page (`web/`).
//!
//! Thin by design: every call into the library is in [`core_api`]; this module only
//! converts between JavaScript values and Rust. Results are plain JS objects (field names
//! in camelCase, maps as objects), byte arrays are `Uint8Array`s, and every refusal is a
//! thrown `Error` whose message is the library's own wording.
//!
//! Values typed into the page reach Rust only through [`FirmwareFile::check`] and
//! [`FirmwareFile::personalize`]; nothing here logs, stores or echoes them.

pub mod core_api;

use js_sys::{Reflect, Uint8Array};
use serde::Serialize;
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    let s = serde_wasm_bindgen::Serializer::json_compatible();
    value
        .serialize(&s)
        .map_err(|e| JsError::new(&format!("internal: cannot convert a result: {e}")))
}

fn set(obj: &JsValue, key: &str, value: &JsValue) -> Result<(), JsError> {
    Reflect::set(obj, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| JsError::new("internal: cannot build a result object"))
}

/// `{ key: "text", ... }` from the page; never echoed in an error.
fn values_of(values: JsValue) -> Result<BTreeMap<String, String>, JsError> {
    if values.is_undefined() || values.is_null() {
        return Ok(BTreeMap::new());
    }
    serde_wasm_bindgen::from_value(values)
        .map_err(|_| JsError::new("values must be an object of strings, { key: \"text\" }"))
}

fn problems_error(problems: Vec<String>) -> JsError {
    JsError::new(&problems.join("\n"))
}

/// `{ placeholders?: { key: literal }, placeholdersOptional?: boolean, chip?: string }`.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct OpenOptionsJs {
    placeholders: BTreeMap<String, String>,
    placeholders_optional: bool,
    chip: Option<String>,
}

/// A firmware file opened by the page.
#[wasm_bindgen]
pub struct FirmwareFile {
    inner: core_api::Opened,
}

#[wasm_bindgen]
impl FirmwareFile {
    /// Parses and verifies `bytes` (a file named `name`). Throws when it is not firmware
    /// (the message names the file, the offset and what was expected), or too large.
    /// A signed or invalid image opens: `info().refusal` says why it cannot be patched.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, bytes: &[u8], options: JsValue) -> Result<FirmwareFile, JsError> {
        let opts: OpenOptionsJs = if options.is_undefined() || options.is_null() {
            OpenOptionsJs::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| JsError::new(&format!("options: {e}")))?
        };
        let options = core_api::OpenOptions {
            placeholders: opts.placeholders,
            placeholders_optional: opts.placeholders_optional,
            chip: opts.chip,
        };
        core_api::Opened::open(name, bytes.to_vec(), &options)
            .map(|inner| FirmwareFile { inner })
            .map_err(|e| JsError::new(&e))
    }

    /// Kind, chip, validity, integrity problems and why it cannot be patched or flashed.
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(self.inner.info())
    }

    /// `{ fields: [slot or placeholder], damaged: [record with a problem] }`.
    pub fn slots(&self) -> Result<JsValue, JsError> {
        to_js(self.inner.slots())
    }

    /// `{ ok, fields: { key: [message] }, general: [message] }` for `values`; an empty
    /// text means "not given". Writes nothing.
    pub fn check(&self, values: JsValue) -> Result<JsValue, JsError> {
        to_js(&self.inner.check(&values_of(values)?))
    }

    /// The personalised file: `{ bytes: Uint8Array, fileName, report, slots, warnings, ... }`.
    /// Throws with every problem (one a line) when a value breaks a rule.
    pub fn personalize(&self, values: JsValue) -> Result<JsValue, JsError> {
        let out = self
            .inner
            .personalize(&values_of(values)?)
            .map_err(problems_error)?;
        let obj = to_js(&out)?;
        set(
            &obj,
            "bytes",
            &Uint8Array::from(out.bytes.as_slice()).into(),
        )?;
        Ok(obj)
    }
}

/// The refusal for a file of `size` bytes, checked before the page reads it; `undefined`
/// when the size is fine.
#[wasm_bindgen(js_name = fileSizeProblem)]
pub fn file_size_problem(name: &str, size: f64) -> Option<String> {
    core_api::file_size_problem(name, size as u64)
}

/// `{ chip, loader, needsTable, tableOffset, tableLen }` for a (personalised) file.
#[wasm_bindgen(js_name = flashRoute)]
pub fn flash_route(name: &str, bytes: &[u8]) -> Result<JsValue, JsError> {
    core_api::route(name, bytes)
        .map_err(|e| JsError::new(&e))
        .and_then(|r| to_js(&r))
}

/// `{ route, parts: [{ offset, what, erase, len, md5, data: Uint8Array }], warnings,
/// totalBytes }`: everything to write, in order. `deviceTable` is the flash read at
/// `route.tableOffset` when `route.needsTable`.
#[wasm_bindgen(js_name = flashPlan)]
pub fn flash_plan(
    name: &str,
    bytes: &[u8],
    device_table: Option<Vec<u8>>,
) -> Result<JsValue, JsError> {
    let plan =
        core_api::flash_plan(name, bytes, device_table.as_deref()).map_err(|e| JsError::new(&e))?;
    let obj = to_js(&plan)?;
    let parts = Reflect::get(&obj, &JsValue::from_str("parts"))
        .map_err(|_| JsError::new("internal: no parts"))?;
    for (i, p) in plan.parts.iter().enumerate() {
        let item = Reflect::get_u32(&parts, i as u32)
            .map_err(|_| JsError::new("internal: missing part"))?;
        set(&item, "data", &Uint8Array::from(p.data.as_slice()).into())?;
    }
    Ok(obj)
}

/// Throws unless the detected chip (esptool-js's name, e.g. `ESP32-C3`) is `imageChip`.
#[wasm_bindgen(js_name = checkChip)]
pub fn check_chip(name: &str, image_chip: &str, detected: &str) -> Result<String, JsError> {
    core_api::check_chip(name, image_chip, detected)
        .map(|c| c.to_string())
        .map_err(|e| JsError::new(&e))
}

/// Hex MD5, for the loader's check of what it wrote.
#[wasm_bindgen(js_name = md5Hex)]
pub fn md5_hex(bytes: &[u8]) -> String {
    core_api::md5_hex(bytes)
}

/// `{ thingerPatch, esptool? }`: the commands that flash the downloaded file.
#[wasm_bindgen(js_name = flashCommands)]
pub fn flash_commands(file_name: &str, bytes: &[u8]) -> Result<JsValue, JsError> {
    to_js(&core_api::commands(file_name, bytes))
}

/// The fields of a slot record (the value masked when it is secret).
#[wasm_bindgen(js_name = decodeRecord)]
pub fn decode_record(bytes: &[u8]) -> Result<JsValue, JsError> {
    to_js(&core_api::decode_record(bytes))
}

/// The bytes of a record as a declaration compiles to.
#[wasm_bindgen(js_name = encodeRecord)]
pub fn encode_record(
    key: &str,
    capacity: u16,
    flags: u16,
    patched: bool,
    value: &str,
) -> Result<Vec<u8>, JsError> {
    core_api::encode_record(key, capacity, flags, patched, value).map_err(|e| JsError::new(&e))
}

/// A record after writing `value` into it.
#[wasm_bindgen(js_name = patchRecord)]
pub fn patch_record(bytes: &[u8], value: &str) -> Result<Vec<u8>, JsError> {
    core_api::patch_record(bytes, value).map_err(|e| JsError::new(&e))
}

/// The version of these bindings (they are released with the library they wrap).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
