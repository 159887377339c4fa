//! The records this crate builds are byte for byte the golden vectors of the spec
//! (`docs/slot-format.md` §6), parsed from the document at test time.

mod common;

use std::panic::catch_unwind;

use common::{golden_vectors, hex, patched};
use thinger_slot::{HEADER_LEN, MAGIC, REQUIRED, SECRET, Slot, VERSION, value_len};

// The declarations shown in spec §6, through the real macro.
thinger_slot::slot!(static VECTOR_A: "wifi_ssid", capacity = 32, default = "", flags = thinger_slot::REQUIRED);
thinger_slot::slot!(static VECTOR_B: "thinger_host", capacity = 64, default = "iot.thinger.io");
thinger_slot::slot!(
    static VECTOR_C: "wifi_password",
    capacity = 64,
    default = "",
    flags = thinger_slot::SECRET | thinger_slot::REQUIRED,
);
thinger_slot::slot!(static VECTOR_D: "x", capacity = 1, default = "", flags = 0);

mod standard {
    thinger_slot::standard_slots!(pub);
}

#[test]
fn spec_golden_vectors_parse() {
    let v = golden_vectors();
    assert_eq!(v[&'A'].len(), 84);
    assert_eq!(v[&'B'].len(), 116);
    assert_eq!(v[&'C'].len(), 116);
    assert_eq!(v[&'D'].len(), 52);
    for bytes in v.values() {
        assert_eq!(&bytes[..8], &MAGIC);
        assert_eq!(bytes[8], VERSION);
    }
}

#[test]
fn vector_a() {
    let golden = &golden_vectors()[&'A'];
    assert_eq!(hex(VECTOR_A.as_bytes()), hex(golden));
    assert_eq!(hex(VECTOR_A.record_bytes()), hex(golden));
    assert_eq!(VECTOR_A.get(), "");
    assert!(!VECTOR_A.is_patched());
    assert_eq!(
        (VECTOR_A.key(), VECTOR_A.capacity(), VECTOR_A.flags()),
        ("wifi_ssid", 32, REQUIRED)
    );
}

#[test]
fn vector_b() {
    let golden = &golden_vectors()[&'B'];
    assert_eq!(hex(VECTOR_B.as_bytes()), hex(golden));
    assert_eq!(hex(VECTOR_B.record_bytes()), hex(golden));
    assert_eq!(VECTOR_B.get(), "iot.thinger.io");
    assert!(!VECTOR_B.is_patched());
    assert_eq!(
        (VECTOR_B.key(), VECTOR_B.capacity(), VECTOR_B.flags()),
        ("thinger_host", 64, 0)
    );
}

#[test]
fn vector_c_after_patching() {
    let golden = &golden_vectors()[&'C'];
    // Spec §5: value := "correct horse" + NULs, state := 1, nothing else.
    let after = patched(VECTOR_C.as_bytes(), "correct horse");
    assert_eq!(hex(&after), hex(golden));
    // Only the state byte and the value field differ from the record as compiled.
    let before = VECTOR_C.as_bytes();
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(
        changed.iter().all(|&i| i == 9 || i >= HEADER_LEN),
        "changed bytes {changed:?}"
    );
    assert_eq!(VECTOR_C.get(), "");
    assert!(!VECTOR_C.is_patched());
    assert!(VECTOR_C.is_secret() && VECTOR_C.is_required());
}

#[test]
fn vector_d() {
    let golden = &golden_vectors()[&'D'];
    assert_eq!(hex(VECTOR_D.as_bytes()), hex(golden));
    assert_eq!(hex(VECTOR_D.record_bytes()), hex(golden));
    assert_eq!(VECTOR_D.get(), "");
    assert_eq!(
        (VECTOR_D.key(), VECTOR_D.capacity(), VECTOR_D.flags()),
        ("x", 1, 0)
    );
}

#[test]
fn records_are_aligned_statics() {
    for addr in [
        VECTOR_A.record_bytes().as_ptr(),
        VECTOR_B.record_bytes().as_ptr(),
        VECTOR_C.record_bytes().as_ptr(),
        VECTOR_D.record_bytes().as_ptr(),
    ] {
        assert_eq!(addr as usize % 4, 0);
    }
    // get() returns the record's own value field.
    assert_eq!(
        VECTOR_B.get().as_ptr(),
        VECTOR_B.record_bytes()[HEADER_LEN..].as_ptr()
    );
}

#[test]
fn standard_slots_match_the_c_macro_and_the_spec() {
    let golden = golden_vectors();
    // wifi_ssid and thinger_host are declared exactly as vectors A and B.
    assert_eq!(hex(standard::WIFI_SSID.record_bytes()), hex(&golden[&'A']));
    assert_eq!(
        hex(standard::THINGER_HOST.record_bytes()),
        hex(&golden[&'B'])
    );
    let declared: Vec<(&str, Vec<u8>)> = vec![
        ("wifi_ssid", standard::WIFI_SSID.as_bytes().to_vec()),
        ("wifi_password", standard::WIFI_PASSWORD.as_bytes().to_vec()),
        ("thinger_host", standard::THINGER_HOST.as_bytes().to_vec()),
        ("thinger_user", standard::THINGER_USER.as_bytes().to_vec()),
        (
            "thinger_device",
            standard::THINGER_DEVICE.as_bytes().to_vec(),
        ),
        (
            "thinger_credentials",
            standard::THINGER_CREDENTIALS.as_bytes().to_vec(),
        ),
    ];
    let expected = common::standard_slots();
    assert_eq!(declared.len(), expected.len());
    for ((key, bytes), (want_key, want)) in declared.iter().zip(&expected) {
        assert_eq!(key, want_key);
        assert_eq!(hex(bytes), hex(want), "standard slot {key}");
    }
    assert_eq!(standard::WIFI_PASSWORD.flags(), SECRET);
    assert_eq!(standard::THINGER_CREDENTIALS.flags(), SECRET | REQUIRED);
    assert_eq!(standard::THINGER_HOST.get(), "iot.thinger.io");
}

/// `Slot::new` is the compile-time check of `slot!`; called at run time it panics instead, which
/// lets us test each rule's boundary.
#[test]
fn declaration_rules() {
    // (The expected panics print their messages into the captured test output.)
    fn rejects<const V: usize>(f: impl FnOnce() -> Slot<V> + std::panic::UnwindSafe) -> bool {
        catch_unwind(f).is_err()
    }
    let key31 = "k".repeat(31);
    let key32 = "k".repeat(32);
    assert_eq!(Slot::<4>::new(&key31, 1, "", 0).key(), key31);
    assert!(rejects(|| Slot::<4>::new(&key32, 1, "", 0)));
    assert!(rejects(|| Slot::<4>::new("", 1, "", 0)));
    assert!(rejects(|| Slot::<4>::new("1abc", 1, "", 0)));
    assert!(rejects(|| Slot::<4>::new(".abc", 1, "", 0)));
    assert!(rejects(|| Slot::<4>::new("a b", 1, "", 0)));
    assert!(rejects(|| Slot::<4>::new("a/b", 1, "", 0)));
    assert_eq!(Slot::<4>::new("_a.b-c9", 1, "", 0).key(), "_a.b-c9");
    // Capacity 1..=4096, and V must be value_len(capacity).
    assert!(rejects(|| Slot::<4>::new("k", 0, "", 0)));
    assert_eq!(
        Slot::<{ value_len(4096) }>::new("k", 4096, "", 0).capacity(),
        4096
    );
    assert!(rejects(|| Slot::<{ value_len(4097) }>::new(
        "k", 4097, "", 0
    )));
    assert!(rejects(|| Slot::<8>::new("k", 3, "", 0)));
    // The default fits the capacity (not merely the value field) and has no NUL.
    assert_eq!(
        Slot::<8>::new("k", 4, "abcd", 0).as_bytes()[HEADER_LEN..HEADER_LEN + 5],
        *b"abcd\0"
    );
    assert!(rejects(|| Slot::<12>::new("k", 5, "abcdef", 0)));
    assert!(rejects(|| Slot::<8>::new("k", 4, "ab\0c", 0)));
    // Only SECRET and REQUIRED are defined.
    assert_eq!(Slot::<4>::new("k", 1, "", SECRET | REQUIRED).flags(), 3);
    assert!(rejects(|| Slot::<4>::new("k", 1, "", 4)));
    // Non-ASCII UTF-8 defaults are bytes: "é" is two of them.
    assert!(rejects(|| Slot::<4>::new("k", 1, "é", 0)));
    assert_eq!(
        Slot::<4>::new("k", 2, "é", 0).as_bytes()[HEADER_LEN..HEADER_LEN + 3],
        *"é\0".as_bytes()
    );
}
