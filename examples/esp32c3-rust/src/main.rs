//! ESP32-C3 firmware whose settings are thinger-patch slots.
//!
//! Every `slot!` below compiles into a fixed-size record in flash (`.rodata`); `thinger-patch`
//! finds the records in the built ELF or image and overwrites their values, so one build serves
//! every device. This program only prints what it finds, masking the secrets.
#![no_std]
#![no_main]

use esp_backtrace as _;
use esp_hal::delay::Delay;
use esp_hal::main;
use esp_println::println;
use thinger_slot::Slot;

esp_bootloader_esp_idf::esp_app_desc!();

// wifi_ssid, wifi_password, thinger_host, thinger_user, thinger_device, thinger_credentials.
thinger_slot::standard_slots!();

thinger_slot::slot!(static FW_VERSION: "fw_version", capacity = 16, default = "dev");
thinger_slot::slot!(static GIT_SHA: "git_sha", capacity = 40, default = "");
thinger_slot::slot!(static BUILD_TIME: "build_time", capacity = 32, default = "");
thinger_slot::slot!(static CHANNEL: "channel", capacity = 16, default = "stable");

/// Prints one slot: secrets (passwords, device credentials) only by their length.
fn show<const V: usize>(slot: &'static Slot<V>) {
    let (key, value) = (slot.key(), slot.get());
    let state = if slot.is_patched() {
        "patched"
    } else {
        "default"
    };
    if !slot.is_secret() {
        println!("  {key:<20} = {value:?} ({state})");
    } else if value.is_empty() {
        println!("  {key:<20} = <empty> ({state})");
    } else {
        println!("  {key:<20} = <secret, {} bytes> ({state})", value.len());
    }
}

fn print_slots() {
    println!("thinger-esp32c3: slots");
    show(&WIFI_SSID);
    show(&WIFI_PASSWORD);
    show(&THINGER_HOST);
    show(&THINGER_USER);
    show(&THINGER_DEVICE);
    show(&THINGER_CREDENTIALS);
    show(&FW_VERSION);
    show(&GIT_SHA);
    show(&BUILD_TIME);
    show(&CHANNEL);
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
