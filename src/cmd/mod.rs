//! One module per command: its arguments (clap) and its `run`.

pub mod flash;
pub mod inspect;
pub mod ota;
pub mod patch;
pub mod setup;
pub mod verify;
