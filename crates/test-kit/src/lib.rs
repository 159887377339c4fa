//! Simulators for thinger-patch's tests and benchmarks, for what cannot run here: a chip's
//! serial bootloader, a device's OTA updaters, the Thinger.io cloud. Each is written from the
//! documented protocol (see each module) and never published.

pub mod arduino_ota;
pub mod http_updater;
#[cfg(unix)]
pub mod rom_loader;
mod skip;
pub use skip::skip;
pub mod thinger_cloud;
