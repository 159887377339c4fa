//! One module per command: its arguments (clap) and its `run`.

pub mod batch;
pub mod flash;
pub mod fleet;
pub mod inspect;
pub mod ledger;
pub mod ota;
pub mod patch;
pub mod setup;
pub mod thinger;
pub mod verify;
