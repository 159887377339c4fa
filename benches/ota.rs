//! OTA benchmark (being written).
fn main() {}
