//! ESP32-C3 firmware whose settings are thinger-patch slots.
//!
//! Every `slot!` below compiles into a fixed-size record in flash (`.rodata`); `thinger-patch`
//! finds the records in the built ELF or image and overwrites their values, so one build serves
//! every device. This program only prints what it finds, masking the secrets.
#![no_std]
#![no_main]

// TEMPORARY until device/rust has slot!: a local stand-in.
#[path = "slot_standin.rs"]
mod thinger_slot;

use esp_backtrace as _;
use esp_hal::delay::Delay;
use esp_hal::main;
use esp_println::println;

esp_bootloader_esp_idf::esp_app_desc!();

// wifi_ssid, wifi_password, thinger_host, thinger_user, thinger_device, thinger_credentials.
thinger_slot::standard_slots!();

thinger_slot::slot!(static FW_VERSION: "fw_version", capacity = 16, default = "dev");
thinger_slot::slot!(static GIT_SHA: "git_sha", capacity = 40, default = "");
thinger_slot::slot!(static BUILD_TIME: "build_time", capacity = 32, default = "");
thinger_slot::slot!(static CHANNEL: "channel", capacity = 16, default = "stable");

/// Prints one value: secrets (passwords, device credentials) only by their length.
fn print_value(key: &str, value: &str, patched: bool, secret: bool) {
    let state = if patched { "patched" } else { "default" };
    if !secret {
        println!("  {key:<20} = {value:?} ({state})");
    } else if value.is_empty() {
        println!("  {key:<20} = <empty> ({state})");
    } else {
        println!("  {key:<20} = <secret, {} bytes> ({state})", value.len());
    }
}

macro_rules! show {
    ($key:literal, $slot:ident) => {
        print_value($key, $slot.get(), $slot.is_patched(), false)
    };
    ($key:literal, $slot:ident, secret) => {
        print_value($key, $slot.get(), $slot.is_patched(), true)
    };
}

fn print_slots() {
    println!("thinger-esp32c3: slots");
    show!("wifi_ssid", WIFI_SSID);
    show!("wifi_password", WIFI_PASSWORD, secret);
    show!("thinger_host", THINGER_HOST);
    show!("thinger_user", THINGER_USER);
    show!("thinger_device", THINGER_DEVICE);
    show!("thinger_credentials", THINGER_CREDENTIALS, secret);
    show!("fw_version", FW_VERSION);
    show!("git_sha", GIT_SHA);
    show!("build_time", BUILD_TIME);
    show!("channel", CHANNEL);
}

#[main]
fn main() -> ! {
    let _peripherals = esp_hal::init(esp_hal::Config::default());
    let delay = Delay::new();

    loop {
        print_slots();
        if WIFI_SSID.get().is_empty() {
            println!("not personalised: run `thinger-patch patch <elf> --profile <name>`");
        }
        delay.delay_millis(10_000);
    }
}
