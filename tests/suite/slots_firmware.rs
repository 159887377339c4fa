//! The example firmware, end to end through the CLI: for the ESP8266 C demo (v2 image), the
//! ESP32-C3 C demo and the esp-hal ESP32-C3 Rust example,
//!
//! - patching the ELF and converting it gives the same image as converting and patching the
//!   image, except (ESP32 app images) the app descriptor's `app_elf_sha256` and the checksum and
//!   SHA-256 that follow from it;
//! - every patched image is valid for esptool and for the independent checks in `common`;
//! - a patched image patched again with another profile holds the new values, stays valid and
//!   keeps every record's state byte "patched"; patching back gives the first image byte for byte;
//! - `inspect --json` shows every slot with key, capacity, flags, state and masked secrets.
//!
//! Also: the merged ESP32-C3 flash image patched directly changes only the factory app.
//!
//! The profiles live in a `thinger-patch.toml` written into a temporary folder. Needs esptool
//! (skips without it, fails under `CI=true`) and, for the Rust firmware, the ELF built by
//! `scripts/ci.d/30-esp32c3-rust-firmware.sh` (skips without it, fails under `CI=true`).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

// =============================================================================================
// Independent slot-record reader (docs/slot-format.md §1), sharing nothing with the library
// =============================================================================================

const MAGIC: &[u8; 8] = b"TPSLOT\xA5\x5A";
const HEADER: usize = 48;

/// One well-formed record found in raw file bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    /// File offset of the record's first byte.
    offset: usize,
    key: String,
    capacity: usize,
    flags: u16,
    state: u8,
    value: String,
}

impl Record {
    fn value_len(&self) -> usize {
        (self.capacity + 4) & !3
    }
    /// File offsets of the bytes a patch may change: the state byte and the value field.
    fn patchable(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.offset + 9)
            .chain(self.offset + HEADER..self.offset + HEADER + self.value_len())
    }
}

/// Every record in `bytes` (scanned as one flat buffer; the example firmware never splits a
/// record across segments). Panics on a malformed record: the examples have none.
fn records(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = common::find_all(&bytes[pos..], MAGIC).first().copied() {
        let at = pos + i;
        let h = &bytes[at..at + HEADER];
        assert_eq!(h[8], 1, "record at {at:#x}: version");
        assert_eq!(h[15], 0, "record at {at:#x}: reserved byte");
        let flags = u16::from_le_bytes([h[10], h[11]]);
        let capacity = u16::from_le_bytes([h[12], h[13]]) as usize;
        let key_len = h[14] as usize;
        let key = String::from_utf8(h[16..16 + key_len].to_vec()).expect("ASCII key");
        assert!(
            h[16 + key_len..48].iter().all(|&b| b == 0),
            "record {key}: key padding"
        );
        let v = (capacity + 4) & !3;
        let field = &bytes[at + HEADER..at + HEADER + v];
        let nul = field.iter().position(|&b| b == 0).expect("NUL-terminated");
        assert!(nul <= capacity, "record {key}: value longer than capacity");
        assert!(
            field[nul..].iter().all(|&b| b == 0),
            "record {key}: bytes after the NUL are not NUL"
        );
        out.push(Record {
            offset: at,
            key,
            capacity,
            flags,
            state: h[9],
            value: String::from_utf8(field[..nul].to_vec()).expect("UTF-8 value"),
        });
        pos = at + HEADER + v;
    }
    out
}

fn records_by_key(bytes: &[u8]) -> BTreeMap<String, Record> {
    let recs = records(bytes);
    let n = recs.len();
    let map: BTreeMap<_, _> = recs.into_iter().map(|r| (r.key.clone(), r)).collect();
    assert_eq!(map.len(), n, "a key occurs in more than one record");
    map
}

// =============================================================================================
// The firmware under test
// =============================================================================================

/// How an ELF becomes a flashable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convert {
    /// `esptool --chip esp8266 elf2image --version 2` (examples/c-firmware/build.sh).
    EsptoolEsp8266V2,
    /// `esptool --chip esp32c3 elf2image --flash-mode dio --flash-size 4MB` (build.sh).
    EsptoolEsp32c3,
    /// espflash's library: `IdfBootloaderFormat::new(..).ota_segments()`.
    Espflash,
}

/// A slot as the firmware declares it.
struct Declared {
    key: &'static str,
    capacity: usize,
    /// `None`: take the flags from the ELF's record (the Rust crate chooses them).
    flags: Option<u16>,
    default: &'static str,
}

const SECRET: u16 = 1;
const REQUIRED: u16 = 2;

const fn decl(key: &'static str, capacity: usize, flags: u16, default: &'static str) -> Declared {
    Declared {
        key,
        capacity,
        flags: Some(flags),
        default,
    }
}

/// examples/c-firmware/README.md, "Slots".
const C_SLOTS: &[Declared] = &[
    decl("wifi_ssid", 32, REQUIRED, ""),
    decl("wifi_password", 64, SECRET, ""),
    decl("thinger_host", 64, 0, "iot.thinger.io"),
    decl("thinger_user", 32, REQUIRED, ""),
    decl("thinger_device", 32, REQUIRED, ""),
    decl("thinger_credentials", 64, SECRET | REQUIRED, ""),
    decl("fw.version", 16, 0, "dev"),
    decl("greeting", 48, 0, "hello"),
];

const fn rdecl(key: &'static str, capacity: usize, default: &'static str) -> Declared {
    Declared {
        key,
        capacity,
        flags: None,
        default,
    }
}

/// examples/esp32c3-rust/README.md (flags: whatever thinger_slot::standard_slots!() chose).
const RUST_SLOTS: &[Declared] = &[
    rdecl("wifi_ssid", 32, ""),
    rdecl("wifi_password", 64, ""),
    rdecl("thinger_host", 64, "iot.thinger.io"),
    rdecl("thinger_user", 32, ""),
    rdecl("thinger_device", 32, ""),
    rdecl("thinger_credentials", 64, ""),
    rdecl("fw_version", 16, "dev"),
    rdecl("git_sha", 40, ""),
    rdecl("build_time", 32, ""),
    rdecl("channel", 16, "stable"),
];

/// Keys that must be secret whatever the declaration's other flags.
const SECRET_KEYS: &[&str] = &["wifi_password", "thinger_credentials"];

struct Example {
    name: &'static str,
    elf: PathBuf,
    convert: Convert,
    chip: &'static str,
    slots: &'static [Declared],
    /// Profile values for the firmware-specific slots: (key, kitchen, garage or None).
    extra: &'static [(&'static str, &'static str, Option<&'static str>)],
}

fn prebuilt(name: &str) -> PathBuf {
    common::repo_root()
        .join("examples/c-firmware/prebuilt")
        .join(name)
}

fn esp8266_c() -> Example {
    Example {
        name: "esp8266-c",
        elf: prebuilt("esp8266-demo.elf"),
        convert: Convert::EsptoolEsp8266V2,
        chip: "esp8266",
        slots: C_SLOTS,
        extra: &[
            ("fw.version", "1.2.3-kitchen", Some("1.2.4-garage")),
            ("greeting", "Good morning from the kitchen, all", None),
        ],
    }
}

fn esp32c3_c() -> Example {
    Example {
        name: "esp32c3-c",
        elf: prebuilt("esp32c3-demo.elf"),
        convert: Convert::EsptoolEsp32c3,
        chip: "esp32c3",
        slots: C_SLOTS,
        extra: &[
            ("fw.version", "1.2.3-kitchen", Some("1.2.4-garage")),
            ("greeting", "Good morning from the kitchen, all", None),
        ],
    }
}

/// `None` (after printing why) when the Rust firmware has not been built; panics under CI.
fn esp32c3_rust() -> Option<Example> {
    let elf = common::repo_root()
        .join("target/esp32c3-rust/riscv32imc-unknown-none-elf/release/thinger-esp32c3");
    if !elf.is_file() {
        let msg = format!(
            "the esp-hal ESP32-C3 firmware ELF {} is absent: build it with scripts/ci.d/30-esp32c3-rust-firmware.sh",
            elf.display()
        );
        assert!(!common::in_ci(), "{msg} (CI=true makes this a failure)");
        common::skip(&msg);
        return None;
    }
    Some(Example {
        name: "esp32c3-rust",
        elf,
        convert: Convert::Espflash,
        chip: "esp32c3",
        slots: RUST_SLOTS,
        extra: &[
            ("fw_version", "1.2.3", Some("1.2.4")),
            ("git_sha", "0123456789abcdef0123456789abcdef01234567", None),
            ("channel", "beta", Some("nightly")),
        ],
    })
}

// =============================================================================================
// Profiles
// =============================================================================================

/// (key, kitchen, garage) for the standard slots; `None`: garage leaves the kitchen value.
const STANDARD_VALUES: &[(&str, &str, Option<&str>)] = &[
    ("wifi_ssid", "Kitchen-Net 2.4GHz extended", Some("Garage")),
    (
        "wifi_password",
        "kitchen-canary-pw-4417",
        Some("garage-canary-pw-9"),
    ),
    ("thinger_host", "eu.iot.example.org", None),
    ("thinger_device", "kitchen_sensor_01", Some("garage")),
    (
        "thinger_credentials",
        "kitchen-canary-cred-7f3a",
        Some("garage-canary-cred"),
    ),
];
/// In `[defaults]`: both profiles inherit it.
const DEFAULT_USER: &str = "demo_user";

struct Values {
    kitchen: BTreeMap<String, String>,
    garage: BTreeMap<String, String>,
}

fn values(ex: &Example) -> Values {
    let mut kitchen = BTreeMap::new();
    let mut garage = BTreeMap::new();
    kitchen.insert("thinger_user".to_string(), DEFAULT_USER.to_string());
    garage.insert("thinger_user".to_string(), DEFAULT_USER.to_string());
    for (k, kv, gv) in STANDARD_VALUES.iter().chain(ex.extra) {
        kitchen.insert(k.to_string(), kv.to_string());
        if let Some(g) = gv {
            garage.insert(k.to_string(), g.to_string());
        }
    }
    Values { kitchen, garage }
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes `thinger-patch.toml` (mode 0600) with `[defaults]` and the two profiles.
fn write_config(dir: &Path, ex: &Example) -> PathBuf {
    let mut text = format!("[defaults]\nthinger_user = {}\n", toml_str(DEFAULT_USER));
    text.push_str("\n[profiles.kitchen]\n");
    for (k, v, _) in STANDARD_VALUES.iter().chain(ex.extra) {
        text.push_str(&format!("{} = {}\n", toml_str(k), toml_str(v)));
    }
    text.push_str("\n[profiles.garage]\n");
    for (k, _, g) in STANDARD_VALUES.iter().chain(ex.extra) {
        if let Some(g) = g {
            text.push_str(&format!("{} = {}\n", toml_str(k), toml_str(g)));
        }
    }
    let path = common::write_file(dir, "thinger-patch.toml", text.as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn secret_values() -> Vec<&'static str> {
    STANDARD_VALUES
        .iter()
        .filter(|(k, _, _)| SECRET_KEYS.contains(k))
        .flat_map(|(_, kv, gv)| [Some(*kv), *gv])
        .flatten()
        .collect()
}

// =============================================================================================
// Running things
// =============================================================================================

/// Runs thinger-patch in `dir` and asserts exit 0.
fn tp_ok(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(common::cli_path())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running thinger-patch");
    assert!(
        out.status.success(),
        "thinger-patch {} failed:\n{}",
        args.join(" "),
        common::describe_output(&out)
    );
    for secret in secret_values() {
        for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !String::from_utf8_lossy(stream).contains(secret),
                "thinger-patch {} shows a secret value on {name}:\n{}",
                args.join(" "),
                common::describe_output(&out)
            );
        }
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Converts an ELF to the flashable image the way the example's build does.
fn convert(ex: &Example, esptool: &common::Esptool, elf: &Path, out: &Path) -> Vec<u8> {
    match ex.convert {
        Convert::EsptoolEsp8266V2 => esptool
            .elf2image(elf, out, "esp8266", &["--version", "2"])
            .unwrap_or_else(|e| panic!("{e}")),
        Convert::EsptoolEsp32c3 => esptool
            .elf2image(
                elf,
                out,
                "esp32c3",
                &["--flash-mode", "dio", "--flash-size", "4MB"],
            )
            .unwrap_or_else(|e| panic!("{e}")),
        Convert::Espflash => {
            let bytes = common::espflash_app_image(&fs::read(elf).unwrap(), "esp32c3");
            fs::write(out, bytes).unwrap();
        }
    }
    fs::read(out).unwrap()
}

/// Valid for esptool and for the independent checks (checksum, SHA-256, v2 CRC).
fn assert_valid_image(ex: &Example, esptool: &common::Esptool, path: &Path, what: &str) {
    esptool
        .image_info(path, Some(ex.chip))
        .assert_valid(&format!("{} {what}", ex.name));
    let bytes = fs::read(path).unwrap();
    let walked = common::walk_app_image(&bytes, false);
    assert!(
        walked.checksum_ok(),
        "{} {what}: checksum {:#04x}, computed {:#04x}",
        ex.name,
        walked.stored_checksum,
        walked.computed_checksum
    );
    match ex.convert {
        Convert::EsptoolEsp8266V2 => {
            assert!(common::v2_crc_ok(&bytes), "{} {what}: v2 CRC", ex.name);
            assert_eq!(walked.end + 4, bytes.len(), "{} {what}: v2 length", ex.name);
        }
        _ => {
            assert_eq!(walked.hash_ok(), Some(true), "{} {what}: SHA-256", ex.name);
            assert_eq!(walked.end, bytes.len(), "{} {what}: length", ex.name);
        }
    }
}

/// The offsets where `a` and `b` differ (same length required).
fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "lengths differ");
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

/// `app_elf_sha256` of an ESP32 app image: the app descriptor is at 0x20, the field at +0x90.
const APP_ELF_SHA: std::ops::Range<usize> = 0xB0..0xD0;

/// Re-seals an ESP32 app image (checksum, then SHA-256) with the independent helpers.
fn reseal_esp32(image: &mut [u8]) {
    let walked = common::walk_app_image(image, false);
    image[walked.checksum_offset] = walked.computed_checksum;
    let digest = common::sha256(&image[..walked.checksum_offset + 1]);
    image[walked.end - 32..walked.end].copy_from_slice(&digest);
}

// =============================================================================================
// Checks
// =============================================================================================

/// Asserts that `inspect --json FILE` shows every declared slot with the expected key,
/// capacity, flags, state and (masked) value, and nothing of the secrets.
fn assert_inspect(
    ex: &Example,
    dir: &Path,
    file: &Path,
    flags: &BTreeMap<String, u16>,
    expect: &BTreeMap<String, (String, &str)>,
) {
    let out = tp_ok(dir, &["inspect", s(file), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect --json output is not JSON ({e}):\n{}",
            common::describe_output(&out)
        )
    });
    let what = format!("{} inspect {}", ex.name, file.display());
    assert_eq!(doc["valid"], true, "{what}");
    let slots = doc["slots"].as_array().expect("slots array");
    assert_eq!(slots.len(), ex.slots.len(), "{what}: number of slots");
    let mut seen = BTreeSet::new();
    for v in slots {
        let key = v["key"].as_str().expect("key").to_string();
        assert_eq!(v["status"], "ok", "{what}: {key}");
        let d = ex
            .slots
            .iter()
            .find(|d| d.key == key)
            .unwrap_or_else(|| panic!("{what}: unexpected slot {key}"));
        assert_eq!(v["capacity"], d.capacity, "{what}: {key} capacity");
        let f = flags[&key];
        let mut names = Vec::new();
        if f & SECRET != 0 {
            names.push("secret");
        }
        if f & REQUIRED != 0 {
            names.push("required");
        }
        assert_eq!(v["flags"], serde_json::json!(names), "{what}: {key} flags");
        let secret = f & SECRET != 0;
        assert_eq!(v["secret"], secret, "{what}: {key} secret");
        let (value, state) = &expect[&key];
        assert_eq!(v["state"], *state, "{what}: {key} state");
        let shown = if secret && !value.is_empty() {
            "********"
        } else {
            value.as_str()
        };
        assert_eq!(v["value"], shown, "{what}: {key} value");
        seen.insert(key);
    }
    assert_eq!(seen.len(), ex.slots.len(), "{what}: duplicate keys");
}

/// Compares the ESP32 app images of the two routes: equal except `app_elf_sha256`, the checksum
/// and the SHA-256; fixing up the image route's field gives the ELF route's bytes exactly.
fn assert_routes_agree_esp32(
    ex: &Example,
    elf_route: &[u8],
    image_route: &[u8],
    original_elf: &[u8],
    patched_elf: &[u8],
) {
    let walked = common::walk_app_image(image_route, false);
    let digest = walked.end - 32..walked.end;
    let allowed: BTreeSet<usize> = APP_ELF_SHA
        .chain(std::iter::once(walked.checksum_offset))
        .chain(digest.clone())
        .collect();
    let d = diff(elf_route, image_route);
    let stray: Vec<_> = d.iter().filter(|i| !allowed.contains(i)).collect();
    assert!(
        stray.is_empty(),
        "{}: the ELF route and the image route differ outside app_elf_sha256/checksum/SHA-256 at offsets {stray:#x?}",
        ex.name
    );
    // The expected difference, precisely.
    assert_eq!(
        &image_route[APP_ELF_SHA],
        &common::sha256(original_elf)[..],
        "{}: the image route must keep the original ELF's SHA-256 in the app descriptor",
        ex.name
    );
    assert_eq!(
        &elf_route[APP_ELF_SHA],
        &common::sha256(patched_elf)[..],
        "{}: the ELF route's app descriptor holds the patched ELF's SHA-256",
        ex.name
    );
    assert!(
        d.iter().any(|i| APP_ELF_SHA.contains(i)) && d.iter().any(|i| digest.contains(i)),
        "{}: the two routes should differ in app_elf_sha256 and SHA-256",
        ex.name
    );
    let mut fixed = image_route.to_vec();
    fixed[APP_ELF_SHA].copy_from_slice(&common::sha256(patched_elf));
    reseal_esp32(&mut fixed);
    assert!(
        fixed == elf_route,
        "{}: the image route with the patched ELF's SHA-256 re-sealed differs from the ELF route at {:#x?}",
        ex.name,
        diff(&fixed, elf_route)
    );
}

/// The patched ELF differs from the original only in the state bytes and value fields of
/// the records.
fn assert_elf_patch_confined(ex: &Example, original: &[u8], patched: &[u8]) {
    let recs = records(original);
    let allowed: BTreeSet<usize> = recs.iter().flat_map(Record::patchable).collect();
    let d = diff(original, patched);
    assert!(!d.is_empty(), "{}: the ELF did not change", ex.name);
    let stray: Vec<_> = d.iter().filter(|i| !allowed.contains(i)).collect();
    assert!(
        stray.is_empty(),
        "{}: patching the ELF changed bytes outside the records' state/value fields: {stray:#x?}",
        ex.name
    );
}

/// Raw record check: every key of `values` holds that value with state 1, every other record
/// is unchanged from `original`.
fn assert_records(
    ex: &Example,
    what: &str,
    original: &BTreeMap<String, Record>,
    bytes: &[u8],
    values: &BTreeMap<String, String>,
) {
    let now = records_by_key(bytes);
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        original.keys().collect::<Vec<_>>(),
        "{} {what}: record keys",
        ex.name
    );
    for (key, rec) in &now {
        let orig = &original[key];
        assert_eq!(
            (rec.capacity, rec.flags),
            (orig.capacity, orig.flags),
            "{} {what}: {key} header changed",
            ex.name
        );
        match values.get(key) {
            Some(v) => {
                assert_eq!(&rec.value, v, "{} {what}: {key} value", ex.name);
                assert_eq!(rec.state, 1, "{} {what}: {key} state byte", ex.name);
            }
            None => {
                assert_eq!(rec.value, orig.value, "{} {what}: {key} value", ex.name);
                assert_eq!(rec.state, 0, "{} {what}: {key} state byte", ex.name);
            }
        }
    }
}

fn run_example(ex: &Example, esptool: &common::Esptool) {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let cfg = write_config(dir, ex);
    let cfg = s(&cfg);
    let vals = values(ex);

    // The original, and what the declarations say about it.
    let elf_bytes = fs::read(&ex.elf).unwrap();
    let elf = common::write_file(dir, "fw.elf", &elf_bytes);
    let original = records_by_key(&elf_bytes);
    assert_eq!(
        original.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        ex.slots.iter().map(|d| d.key).collect::<BTreeSet<_>>(),
        "{}: the ELF's slot records",
        ex.name
    );
    let mut flags = BTreeMap::new();
    for d in ex.slots {
        let r = &original[d.key];
        assert_eq!(
            (r.capacity, r.value.as_str(), r.state),
            (d.capacity, d.default, 0),
            "{}: record {} as compiled",
            ex.name,
            d.key
        );
        if let Some(f) = d.flags {
            assert_eq!(r.flags, f, "{}: flags of {}", ex.name, d.key);
        }
        if SECRET_KEYS.contains(&d.key) {
            assert!(
                r.flags & SECRET != 0,
                "{}: {} must be secret",
                ex.name,
                d.key
            );
        }
        flags.insert(d.key.to_string(), r.flags);
    }
    let fw_bin = dir.join("fw.bin");
    let image_bytes = convert(ex, esptool, &elf, &fw_bin);
    assert_valid_image(ex, esptool, &fw_bin, "original image");

    // ELF route: patch the ELF, then convert.
    let k_elf = dir.join("k.elf");
    tp_ok(
        dir,
        &[
            "patch",
            s(&elf),
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "-o",
            s(&k_elf),
        ],
    );
    let k_elf_bytes = fs::read(&k_elf).unwrap();
    assert_elf_patch_confined(ex, &elf_bytes, &k_elf_bytes);
    assert_records(ex, "k.elf", &original, &k_elf_bytes, &vals.kitchen);
    let k_from_elf_path = dir.join("k-from-elf.bin");
    let k_from_elf = convert(ex, esptool, &k_elf, &k_from_elf_path);
    assert_valid_image(ex, esptool, &k_from_elf_path, "ELF route");

    // Image route: convert, then patch the image.
    let k_bin = dir.join("k.bin");
    tp_ok(
        dir,
        &[
            "patch",
            s(&fw_bin),
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "-o",
            s(&k_bin),
        ],
    );
    let k_bytes = fs::read(&k_bin).unwrap();
    assert_valid_image(ex, esptool, &k_bin, "image route");
    assert_records(ex, "k.bin", &original, &k_bytes, &vals.kitchen);
    assert_ne!(
        k_bytes, image_bytes,
        "{}: the image did not change",
        ex.name
    );

    if ex.convert == Convert::EsptoolEsp8266V2 {
        assert!(
            k_from_elf == k_bytes,
            "{}: ELF route and image route differ at {:#x?}",
            ex.name,
            diff(&k_from_elf, &k_bytes)
        );
    } else {
        assert_routes_agree_esp32(ex, &k_from_elf, &k_bytes, &elf_bytes, &k_elf_bytes);
        // Nothing but records, checksum and digest changed between the original image and the
        // image route (in particular not the app descriptor).
        let walked = common::walk_app_image(&image_bytes, false);
        let mut allowed: BTreeSet<usize> = records(&image_bytes)
            .iter()
            .flat_map(Record::patchable)
            .collect();
        allowed.insert(walked.checksum_offset);
        allowed.extend(walked.end - 32..walked.end);
        let stray: Vec<_> = diff(&image_bytes, &k_bytes)
            .into_iter()
            .filter(|i| !allowed.contains(i))
            .collect();
        assert!(
            stray.is_empty(),
            "{}: the image patch changed other bytes: {stray:#x?}",
            ex.name
        );
    }

    // inspect shows the values (secrets masked), in the image and in the ELF.
    let patched = |v: &BTreeMap<String, String>| -> BTreeMap<String, (String, &'static str)> {
        original
            .iter()
            .map(|(k, r)| match v.get(k) {
                Some(x) => (k.clone(), (x.clone(), "patched")),
                None => (k.clone(), (r.value.clone(), "default")),
            })
            .collect()
    };
    let unpatched = patched(&BTreeMap::new());
    assert_inspect(ex, dir, &fw_bin, &flags, &unpatched);
    assert_inspect(ex, dir, &k_bin, &flags, &patched(&vals.kitchen));
    assert_inspect(ex, dir, &k_elf, &flags, &patched(&vals.kitchen));

    // Re-patch with the other profile: new values replace the old ones, the rest stays.
    let g_bin = dir.join("g.bin");
    tp_ok(
        dir,
        &[
            "patch",
            s(&k_bin),
            "--config",
            cfg,
            "--profile",
            "garage",
            "-o",
            s(&g_bin),
        ],
    );
    let g_bytes = fs::read(&g_bin).unwrap();
    assert_valid_image(ex, esptool, &g_bin, "kitchen image re-patched with garage");
    let mut garage_over_kitchen = vals.kitchen.clone();
    garage_over_kitchen.extend(vals.garage.clone());
    assert_records(ex, "g.bin", &original, &g_bytes, &garage_over_kitchen);
    assert_inspect(ex, dir, &g_bin, &flags, &patched(&garage_over_kitchen));
    // Shorter values than before leave no trace of the longer ones.
    for (k, g) in &vals.garage {
        let old = &vals.kitchen[k];
        if old.len() > g.len() {
            let rec = &records_by_key(&g_bytes)[k];
            let field = &g_bytes[rec.offset + HEADER..rec.offset + HEADER + rec.value_len()];
            assert!(
                field[g.len()..].iter().all(|&b| b == 0),
                "{}: {k}: the rest of the value field must be NUL after a shorter value",
                ex.name
            );
        }
    }

    // ... and back to kitchen: the same bytes as the first patch.
    let k2_bin = dir.join("k2.bin");
    tp_ok(
        dir,
        &[
            "patch",
            s(&g_bin),
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "-o",
            s(&k2_bin),
        ],
    );
    let k2_bytes = fs::read(&k2_bin).unwrap();
    assert!(
        k2_bytes == k_bytes,
        "{}: kitchen -> garage -> kitchen differs from kitchen at {:#x?}",
        ex.name,
        diff(&k2_bytes, &k_bytes)
    );
}

#[test]
fn esp8266_c_firmware_elf_and_image_routes_agree() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    run_example(&esp8266_c(), &esptool);
}

#[test]
fn esp32c3_c_firmware_elf_and_image_routes_agree() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    run_example(&esp32c3_c(), &esptool);
}

#[test]
fn esp32c3_rust_firmware_elf_and_image_routes_agree() {
    let Some(ex) = esp32c3_rust() else { return };
    let Some(esptool) = common::esptool() else {
        return;
    };
    run_example(&ex, &esptool);
}

/// The merged ESP32-C3 flash image patched directly: only the factory app's bytes (records,
/// checksum, SHA-256) change; the bootloader, the partition table and the gaps are untouched,
/// and the app is the same as the patched standalone app image.
#[test]
fn esp32c3_merged_image_patch_changes_only_the_factory_app() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    const APP: usize = 0x10000;
    let ex = esp32c3_c();
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let cfg = write_config(dir, &ex);
    let vals = values(&ex);

    let merged_bytes = fs::read(prebuilt("esp32c3-demo-merged.bin")).unwrap();
    let merged = common::write_file(dir, "merged.bin", &merged_bytes);
    let app_bytes = fs::read(prebuilt("esp32c3-demo.bin")).unwrap();
    let app = common::write_file(dir, "app.bin", &app_bytes);
    assert_eq!(
        &merged_bytes[APP..],
        &app_bytes[..],
        "the merged image's factory app is esp32c3-demo.bin"
    );

    let out = dir.join("merged.kitchen.bin");
    let km = tp_ok(
        dir,
        &[
            "patch",
            s(&merged),
            "--config",
            s(&cfg),
            "--profile",
            "kitchen",
        ],
    );
    assert!(
        out.is_file(),
        "default output {} missing:\n{}",
        out.display(),
        common::describe_output(&km)
    );
    let km_bytes = fs::read(&out).unwrap();
    assert_eq!(km_bytes.len(), merged_bytes.len(), "length changed");
    assert!(
        km_bytes[..APP] == merged_bytes[..APP],
        "bytes before the factory app (bootloader, partition table, gaps) changed at {:#x?}",
        diff(&km_bytes[..APP], &merged_bytes[..APP])
    );

    // The changed bytes are exactly the records' fields plus the app's checksum and digest.
    let walked = common::walk_app_image(&km_bytes[APP..], false);
    assert!(walked.is_valid(), "patched factory app: {walked:?}");
    assert_eq!(APP + walked.end, km_bytes.len());
    let mut allowed: BTreeSet<usize> = records(&app_bytes)
        .iter()
        .flat_map(Record::patchable)
        .map(|o| APP + o)
        .collect();
    allowed.insert(APP + walked.checksum_offset);
    allowed.extend(APP + walked.end - 32..APP + walked.end);
    let d = diff(&km_bytes, &merged_bytes);
    let stray: Vec<_> = d.iter().filter(|i| !allowed.contains(i)).collect();
    assert!(stray.is_empty(), "merged patch changed {stray:#x?}");
    assert!(
        d.iter().any(|&i| i >= APP + walked.end - 32),
        "the factory app's SHA-256 was not updated"
    );
    let original = records_by_key(&app_bytes);
    assert_records(
        &ex,
        "merged app",
        &original,
        &km_bytes[APP..],
        &vals.kitchen,
    );

    // Same as patching the standalone app image.
    let k_bin = dir.join("k.bin");
    tp_ok(
        dir,
        &[
            "patch",
            s(&app),
            "--config",
            s(&cfg),
            "--profile",
            "kitchen",
            "-o",
            s(&k_bin),
        ],
    );
    assert!(
        km_bytes[APP..] == fs::read(&k_bin).unwrap()[..],
        "the merged image's patched app differs from the patched app image"
    );
    let app_out = common::write_file(dir, "km-app.bin", &km_bytes[APP..]);
    esptool
        .image_info(&app_out, Some("esp32c3"))
        .assert_valid("factory app of the patched merged image");
    esptool
        .image_info(&out, Some("esp32c3"))
        .assert_valid("bootloader of the patched merged image");

    let v = tp_ok(dir, &["verify", s(&out), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(doc["valid"], true, "verify: {doc}");
}
