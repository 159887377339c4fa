//! Host program using the `thinger-slot` crate, for `tests/suite/host_programs.rs`: patched by
//! thinger-patch like firmware, then run. Prints every slot as `key=value`, `key.len=N` and
//! `key.patched=0|1`, so the test sees what the optimised (`lto = "fat"`, `opt-level = "s"`)
//! program really reads.
//!
//! The defaults are distinctive strings that occur nowhere else in the program: the test counts
//! them in the allocated sections (exactly once, inside the record, before patching; never
//! after). Never compare a value with its default here: the literal would land in `.rodata`.

thinger_slot::slot!(static WIFI_SSID: "wifi_ssid", capacity = 32, default = "default-ssid-7f3a", flags = thinger_slot::REQUIRED);
thinger_slot::slot!(static WIFI_PASSWORD: "wifi_password", capacity = 64, default = "default-pass-c41d", flags = thinger_slot::SECRET);
thinger_slot::slot!(static FW_VERSION: "fw.version", capacity = 16, default = "dflt-ver-9e2b");
// Declared, never read: the linker and LTO must keep the record anyway.
thinger_slot::slot!(static NEVER_READ: "never_read", capacity = 24, default = "never-read-5b6c");

fn show(key: &str, value: &str, patched: bool) {
    // len() of the value: folded to a constant if the optimiser could see the default.
    println!("{key}={value}");
    println!("{key}.len={}", value.len());
    println!("{key}.patched={}", u8::from(patched));
}

fn main() {
    show("wifi_ssid", WIFI_SSID.get(), WIFI_SSID.is_patched());
    show(
        "wifi_password",
        WIFI_PASSWORD.get(),
        WIFI_PASSWORD.is_patched(),
    );
    show("fw.version", FW_VERSION.get(), FW_VERSION.is_patched());
    // The first byte, read directly: a folded default would give 'd' whatever the file says.
    println!(
        "wifi_ssid.first={}",
        WIFI_SSID.get().as_bytes().first().copied().unwrap_or(0)
    );
}
