//! The Rust twin of tests/c/vectors.c: declares the same slots and prints them in the same
//! format. Built by tests/rust_binary.rs with rustc at -Os and at -O3 with fat LTO.
use thinger_slot::{REQUIRED, SECRET, Slot};

thinger_slot::slot!(static WIFI_SSID: "wifi_ssid", capacity = 32, default = "", flags = REQUIRED);
thinger_slot::slot!(static THINGER_HOST: "thinger_host", capacity = 64, default = "iot.thinger.io");
thinger_slot::slot!(static WIFI_PASSWORD: "wifi_password", capacity = 64, default = "", flags = SECRET | REQUIRED);
thinger_slot::slot!(static X: "x", capacity = 1, default = "");
thinger_slot::slot!(static FW_VERSION: "fw.version", capacity = 16, default = "dev-7f3a9c");
// Never read: must survive --gc-sections.
thinger_slot::slot!(static NEVER_READ: "never_read", capacity = 8, default = "nr-5e1b");

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn dump<const V: usize>(ident: &str, slot: &'static Slot<V>) {
    let record = slot.record_bytes();
    let value = slot.get();
    let in_place = value.as_ptr() == record[thinger_slot::HEADER_LEN..].as_ptr();
    println!(
        "{ident} {} {} {} {} {}",
        hex(record),
        hex(value.as_bytes()),
        value.len(),
        u8::from(slot.is_patched()),
        u8::from(in_place)
    );
}

fn main() {
    dump("wifi_ssid", &WIFI_SSID);
    dump("thinger_host", &THINGER_HOST);
    dump("wifi_password", &WIFI_PASSWORD);
    dump("x", &X);
    dump("fw_version", &FW_VERSION);
}
