//! Native tests of the bindings' logic on the repository's demo firmware (slots of every
//! flag) and, where present, the shared third-party fixtures (skipped with a message when
//! absent, a failure under `CI=true`). The browser tests (`web/test.sh`) run the same calls
//! through the `.wasm`.

use super::*;
use std::path::PathBuf;
use thinger_patch_core::targets::record::FLAG_SECRET;
use thinger_patch_core::targets::scan;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn prebuilt(name: &str) -> Vec<u8> {
    let p = repo().join("examples/c-firmware/prebuilt").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// A file of `../shared/fixtures/third-party`, or `None` (skip) when the folder is absent.
fn fixture(rel: &str) -> Option<Vec<u8>> {
    let dir = repo().join("../shared/fixtures/third-party");
    if !dir.is_dir() {
        assert!(!in_ci(), "{} is absent and CI=true", dir.display());
        thinger_patch_test_kit::skip("../shared/fixtures is absent");
        return None;
    }
    Some(std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}")))
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn demo() -> Opened {
    Opened::open(
        "esp32c3-demo.bin",
        prebuilt("esp32c3-demo.bin"),
        &OpenOptions::default(),
    )
    .expect("the demo opens")
}

const GOOD: &[(&str, &str)] = &[
    ("wifi_ssid", "HomeNet"),
    ("wifi_password", "pw-canary-5521"),
    ("thinger_user", "alice"),
    ("thinger_device", "dev1"),
    ("thinger_credentials", "cred-canary-7788"),
];

#[test]
fn demo_slots_are_listed_with_flags_and_masked_values() {
    let o = demo();
    let info = o.info();
    assert_eq!((info.format, info.chip), ("app-image", Some(Chip::Esp32c3)));
    assert!(info.valid && info.refusal.is_none() && info.not_flashable.is_none());
    let s = &o.slots().fields;
    let keys: Vec<&str> = s.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys.len(), 8, "{keys:?}");
    let get = |k: &str| s.iter().find(|f| f.key == k).unwrap();
    let pw = get("wifi_password");
    assert!(pw.secret && !pw.required && pw.kind == "slot" && pw.capacity == 64);
    let cred = get("thinger_credentials");
    assert!(cred.secret && cred.required);
    assert_eq!(get("thinger_host").value, "iot.thinger.io");
    assert_eq!(get("thinger_host").usual, Some("iot.thinger.io"));
    assert!(get("wifi_ssid").rule.unwrap().contains("1 to 32 bytes"));
    assert_eq!(get("greeting").value, "hello");
    assert_eq!(get("greeting").rule, None);
    assert!(o.slots().damaged.is_empty());
}

#[test]
fn check_puts_each_library_message_next_to_its_field() {
    let o = demo();
    // Nothing given: exactly the four required slots complain, in the CLI's words.
    let c = o.check(&BTreeMap::new());
    assert!(!c.ok);
    let mut required: Vec<&str> = c.fields.keys().map(String::as_str).collect();
    required.sort();
    assert_eq!(
        required,
        [
            "thinger_credentials",
            "thinger_device",
            "thinger_user",
            "wifi_ssid"
        ]
    );
    assert_eq!(
        c.fields["wifi_ssid"],
        ["slot wifi_ssid is required and has no value yet; give it a value"]
    );
    assert!(c.general.is_empty(), "{:?}", c.general);

    // A too-long SSID and a bad device id: the library's messages, without the origin.
    let mut v = values(GOOD);
    v.insert("wifi_ssid".into(), "x".repeat(40));
    v.insert("thinger_device".into(), "has space".into());
    let c = o.check(&v);
    assert!(!c.ok);
    assert_eq!(
        c.fields["wifi_ssid"],
        [
            "slot wifi_ssid: the value is 40 bytes, the slot holds at most 32; shorten it or give the slot a larger capacity in the firmware"
        ]
    );
    assert_eq!(
        c.fields["thinger_device"],
        [
            "slot thinger_device: thinger_device must be 1 to 32 of a-z A-Z 0-9 _ - (Thinger's device id rule) (got 9 bytes)"
        ]
    );
    assert_eq!(c.fields.len(), 2, "{:?}", c.fields);
    // The same problems personalise refuses with (no second copy of the rules).
    let refused = o.personalize(&v).unwrap_err();
    let mut from_check: Vec<String> = c.fields.values().flatten().cloned().collect();
    from_check.sort();
    let mut refused_sorted = refused.clone();
    refused_sorted.sort();
    assert_eq!(from_check, refused_sorted);

    // Every value good: ok, and personalise succeeds.
    let c = o.check(&values(GOOD));
    assert!(c.ok && c.fields.is_empty() && c.general.is_empty(), "{c:?}");
    // Secrets never appear in a check.
    let v = values(&[("wifi_password", "canary7")]);
    let text = format!("{:?}", o.check(&v));
    assert!(!text.contains("canary"), "{text}");
    assert!(text.contains("wifi_password must be"), "{text}");
}

#[test]
fn personalized_demo_verifies_and_holds_the_values() {
    let o = demo();
    let out = o.personalize(&values(GOOD)).expect("personalises");
    assert_eq!(out.file_name, "esp32c3-demo.dev1.bin");
    assert!(out.holds_secrets && out.report.valid);
    let fw = Firmware::parse(&out.bytes).unwrap();
    assert!(fw.verify().valid);
    let found: BTreeMap<String, String> = scan(&fw)
        .into_iter()
        .filter_map(|f| match f.decoded {
            Decoded::Slot(s) => Some((s.key, s.value)),
            _ => None,
        })
        .collect();
    for (k, v) in GOOD {
        assert_eq!(found[*k], *v, "{k}");
    }
    // The report masks secrets; the warnings name no --set.
    let text = serde_json::to_string(&out).unwrap();
    assert!(!text.contains("canary"), "{text}");
    assert!(!text.contains("--set"), "{text}");
    assert!(!text.contains("PAGE_FORM"), "{text}");
    assert!(
        out.slots
            .iter()
            .any(|s| s.key == "wifi_password" && s.value == "********")
    );
    // Re-opened, the result lists its slots as patched.
    let again = Opened::open(&out.file_name, out.bytes.clone(), &OpenOptions::default()).unwrap();
    assert!(
        again
            .slots()
            .fields
            .iter()
            .all(|f| f.state == SlotState::Patched || !GOOD.iter().any(|(k, _)| *k == f.key))
    );
}

#[test]
fn bad_files_are_refused_in_the_cli_words() {
    let e = Opened::open(
        "notes.txt",
        b"hello world".to_vec(),
        &OpenOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        e.starts_with("notes.txt: unrecognised firmware at offset 0x0"),
        "{e}"
    );
    let e = Opened::open("empty.bin", Vec::new(), &OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e,
        "empty.bin: the file is empty (offset 0x0): expected firmware; the file is incomplete: rebuild or download it again"
    );
    let e = file_size_problem("huge.bin", (MAX_FILE_SIZE + 1) as u64).unwrap();
    assert!(e.starts_with("huge.bin: the file is 33554433 bytes, more than 33554432 bytes"));
    assert_eq!(file_size_problem("ok.bin", MAX_FILE_SIZE as u64), None);

    // An image whose checksum is broken opens (to show what is wrong) but is refused.
    let mut bytes = prebuilt("esp32c3-demo.bin");
    let last = bytes.len() - 40; // inside the SHA-256 digest
    bytes[last] ^= 0xFF;
    let o = Opened::open("broken.bin", bytes, &OpenOptions::default()).unwrap();
    assert!(!o.info().valid);
    let r = o.info().refusal.clone().unwrap();
    assert!(r.starts_with("broken.bin: refusing to patch"), "{r}");
    assert!(!o.check(&values(GOOD)).ok);
    assert_eq!(o.personalize(&values(GOOD)).unwrap_err(), [r]);
}

#[test]
fn signed_fixture_is_refused_before_any_value() {
    let Some(bytes) = fixture("esptool/secure/bootloader_signed_v2_rsa.bin") else {
        return;
    };
    let o = Opened::open("signed.bin", bytes, &OpenOptions::default()).unwrap();
    let r = o.info().refusal.clone().unwrap();
    assert!(
        r.starts_with("signed.bin: the image at offset 0x8000 is signed"),
        "{r}"
    );
    assert!(o.info().images[0].signature.is_some());
    assert!(!o.check(&BTreeMap::new()).ok);
}

#[test]
fn placeholders_of_a_manifest_become_fields() {
    let Some(bytes) = fixture("flipperhttp/esp32c3-app.bin") else {
        return;
    };
    let options = OpenOptions {
        placeholders: [
            (
                "wifi_ssid".to_string(),
                "https://httpbin.org/get".to_string(),
            ),
            (
                "wifi_password".to_string(),
                "[ERROR] Failed to parse JSON data.".to_string(),
            ),
            (
                "absent_one".to_string(),
                "no such text anywhere".to_string(),
            ),
        ]
        .into(),
        placeholders_optional: true,
        chip: Some("ESP32-C3".into()),
    };
    let o = Opened::open("app.bin", bytes.clone(), &options).unwrap();
    assert_eq!(o.info().placeholders_absent, ["absent_one"]);
    assert_eq!(o.info().manifest_problem, None);
    let f = &o.slots().fields;
    assert_eq!(f.len(), 2);
    let pw = f.iter().find(|f| f.key == "wifi_password").unwrap();
    assert!(pw.secret && pw.kind == "placeholder" && pw.value == MASK_TEXT);
    let ssid = f.iter().find(|f| f.key == "wifi_ssid").unwrap();
    assert_eq!((ssid.capacity, ssid.addresses.len()), (23, 1));
    let c = o.check(&values(&[("wifi_ssid", &"y".repeat(24))]));
    assert_eq!(
        c.fields["wifi_ssid"],
        [
            "placeholder wifi_ssid: the value is 24 bytes, the placeholder holds at most 23; shorten it: a placeholder holds no more than its literal's length; a longer value needs firmware built with a longer placeholder (a file personalised before has no placeholder left: start again from the original file)"
        ]
    );
    let out = o
        .personalize(&values(&[
            ("wifi_ssid", "HomeNet"),
            ("wifi_password", "pw-canary-5521"),
        ]))
        .unwrap();
    assert!(Firmware::parse(&out.bytes).unwrap().verify().valid);
    let at = ssid.file_offsets[0];
    assert_eq!(&out.bytes[at..at + 8], b"HomeNet\0");

    // The manifest's own firmware: a literal it does not hold is a problem, not a skip.
    let strict = OpenOptions {
        placeholders_optional: false,
        chip: Some("esp32".into()),
        ..options
    };
    let o = Opened::open("app.bin", bytes, &strict).unwrap();
    assert_eq!(
        o.info().manifest_problem.as_deref(),
        Some(
            "the manifest says the firmware is for an esp32, but app.bin is for an esp32c3; the image's own header counts"
        )
    );
    let c = o.check(&BTreeMap::new());
    assert!(!c.ok);
    assert!(
        c.general
            .iter()
            .any(|g| g.starts_with("placeholder for absent_one")),
        "{c:?}"
    );
}

const MASK_TEXT: &str = thinger_patch_core::values::MASK;

#[test]
fn placement_comes_from_the_library() {
    // A merged image needs no table: one write at 0x0.
    let merged = prebuilt("esp32c3-demo-merged.bin");
    let r = route("m.bin", &merged).unwrap();
    assert!(!r.needs_table && r.loader == "esp32" && r.chip == Chip::Esp32c3);
    let p = flash_plan("m.bin", &merged, None).unwrap();
    assert_eq!(p.parts[0].offset, 0);
    assert_eq!(p.parts[0].len, merged.len().next_multiple_of(4));
    assert_eq!(p.parts[0].md5, md5_hex(&p.parts[0].data));

    // An app image needs the device's table: without one it is refused.
    let app = prebuilt("esp32c3-demo.bin");
    let r = route("a.bin", &app).unwrap();
    assert!(r.needs_table && r.table_offset == 0x8000 && r.table_len == 0xC00);
    let e = flash_plan("a.bin", &app, None).unwrap_err();
    assert!(e.contains("no partition table was read"), "{e}");
    let e = flash_plan("a.bin", &app, Some(&[0xFF; 0xC00])).unwrap_err();
    assert!(
        e.contains("no partition table at 0x8000 on the device (it reads ff ff ff ff ff ff ff ff)"),
        "{e}"
    );
    let table = prebuilt("esp32c3-partition-table.bin");
    let p = flash_plan("a.bin", &app, Some(&table)).unwrap();
    let w = &p.parts[0];
    assert!(
        !w.erase && w.offset == 0x10000 && w.what.starts_with("factory"),
        "{w:?}"
    );

    // ELF: not flashable, said at open.
    let elf = Opened::open(
        "x.elf",
        prebuilt("esp32c3-demo.elf"),
        &OpenOptions::default(),
    )
    .unwrap();
    assert!(
        elf.info()
            .not_flashable
            .clone()
            .unwrap()
            .contains("convert it first")
    );

    // Chip check.
    assert_eq!(
        check_chip("a.bin", "esp32c3", "ESP32-C3"),
        Ok(Chip::Esp32c3)
    );
    assert_eq!(
        check_chip("a.bin", "esp32c3", "ESP32").unwrap_err(),
        "the connected chip is an esp32, but a.bin is firmware for an esp32c3: nothing was written"
    );
    assert!(check_chip("a.bin", "esp32c3", "ESP99").is_err());

    // Commands for browsers without Web Serial.
    let c = commands("my fw.bin", &merged);
    assert_eq!(c.thinger_patch, "thinger-patch flash 'my fw.bin'");
    assert_eq!(
        c.esptool.as_deref(),
        Some("esptool --chip esp32c3 write-flash 0x0 'my fw.bin'")
    );
    assert_eq!(commands("a.bin", &app).esptool, None);
}

#[test]
fn output_names_follow_the_cli() {
    assert_eq!(output_name("fw.bin.gz", Some("k")), "fw.k.bin.gz");
    assert_eq!(output_name("fw", None), "fw.personalised");
    assert_eq!(
        output_name("dir/fw.bin", Some("bad name")),
        "fw.personalised.bin"
    );
    assert_eq!(output_name(".fw", Some("d")), ".fw.d");
}

#[test]
fn records_round_trip_and_mask_secrets() {
    let c = encode_record("wifi_password", 64, FLAG_SECRET | 2, false, "").unwrap();
    let patched = patch_record(&c, "correct horse").unwrap();
    let v = decode_record(&patched);
    assert_eq!(v.value.as_deref(), Some(MASK_TEXT));
    assert_eq!(v.state, Some(SlotState::Patched));
    assert!(v.secret && v.required);
    assert!(encode_record("1bad", 4, 0, false, "").is_err());
    assert!(patch_record(&c, &"x".repeat(65)).is_err());
    assert_eq!(decode_record(&c[..20]).status, "malformed");
}
