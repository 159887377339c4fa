//! thinger-patch's integration tests, in one binary: each test binary links the whole
//! library and espflash, so one link instead of fifteen (`cargo test --test suite MODULE::`
//! runs one module, e.g. `cargo test --test suite data_safety::`).
//!
//! The device simulators (ROM loader, ArduinoOTA, HTTP updaters, the Thinger cloud) are in
//! `crates/test-kit`, shared with the benchmarks.

mod common;

mod batch_cli;
mod ci_stamping;
mod cli_patch;
mod common_selftest;
mod data_safety;
mod elf_route;
mod flash_sim;
mod fleet_cli;
mod guided;
mod host_programs;
mod legacy_placeholders;
mod malformed;
mod ota_sim;
mod patch_roundtrip;
mod platformio_script;
mod predecessor;
mod secrets;
mod slots_firmware;
mod thinger_cli;
mod third_party;
