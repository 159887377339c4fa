//! Patchable "slot" records for `no_std` firmware, filled in after the build by `thinger-patch`.
//!
//! A slot is a fixed-size record in the firmware's constant data that names a value the firmware
//! reads at run time (a WiFi SSID, a Thinger.io device id, ...) and reserves room for it. The
//! `thinger-patch` tool finds every record in the compiled ELF or ESP image and overwrites the
//! value in place, any number of times, without the sources. The record is the slot format
//! version 1 (`docs/slot-format.md`), byte for byte the same as the C/C++ header
//! `device/arduino/ThingerSlot`.
//!
//! ```
//! thinger_slot::slot!(pub static WIFI_SSID: "wifi_ssid", capacity = 32, default = "", flags = thinger_slot::REQUIRED);
//! thinger_slot::slot!(static FW_VERSION: "fw.version", capacity = 16, default = "dev");
//!
//! let ssid: &'static str = WIFI_SSID.get(); // "" until patched
//! assert_eq!(FW_VERSION.get(), "dev");
//! assert!(!FW_VERSION.is_patched());
//! assert_eq!(WIFI_SSID.key(), "wifi_ssid");
//! # let _ = ssid;
//! ```
//!
//! The crate is `no_std`, allocates nothing, has no dependencies and no run-time initialisation:
//! every record is built by a `const fn` and checked at compile time. A key that is not 1..=31
//! bytes of `[A-Za-z_][A-Za-z0-9_.-]*`, a capacity outside 1..=4096, a default longer than the
//! capacity or containing NUL, or unknown flags stop the build:
//!
//! ```compile_fail,E0080
//! // error[E0080]: evaluation panicked: thinger-slot: the default is longer than the capacity
//! thinger_slot::slot!(static TOO_LONG: "too_long", capacity = 3, default = "abcd");
//! ```
//!
//! ```
//! // The same declaration with room for the default compiles.
//! thinger_slot::slot!(static LONG_ENOUGH: "long_enough", capacity = 4, default = "abcd");
//! assert_eq!(LONG_ENOUGH.get(), "abcd");
//! ```
//!
//! # Why the declaration looks the way it does
//!
//! [`slot!`] expands to
//!
//! ```standalone_crate
//! #[used]
//! #[unsafe(export_name = "THINGER_SLOT_WIFI_SSID")]
//! #[unsafe(link_section = ".rodata.thinger_slot.wifi_ssid")]
//! pub static WIFI_SSID: thinger_slot::Slot<36> = thinger_slot::Slot::new("wifi_ssid", 32, "", 2);
//! # assert_eq!(WIFI_SSID.get(), "");
//! ```
//!
//! Every part of it is there for a reason:
//!
//! * **[`Slot`] is `#[repr(C, align(4))]` and made of byte arrays only**, so its memory is
//!   exactly the record of the spec: no padding, no dependence on the target's endianness, and
//!   the 4-byte alignment the spec requires (which also allows aligned 32-bit reads).
//! * **`const fn` [`Slot::new`]** builds the bytes at compile time and panics (a compile error)
//!   on invalid input. The default string exists only inside the record: the `&str` argument is
//!   consumed by const evaluation and never emitted on its own.
//! * **`#[unsafe(link_section = ".rodata.thinger_slot.<key>")]`**: `.rodata.*` is allocated,
//!   file-backed and flashed by every ESP linker script, so the record is in the image where
//!   `thinger-patch` can find it; its own section keeps it away from merged string sections.
//! * **`#[used]`** keeps the static in the object file even if nothing references it; on ELF
//!   targets rustc/LLVM also mark its section `SHF_GNU_RETAIN`, so the linker's
//!   `--gc-sections` keeps a declared slot that the program never reads.
//! * **`#[unsafe(export_name = "THINGER_SLOT_<NAME>")]`** (a `no_mangle` with a chosen name):
//!   a stable, greppable symbol in map files and debuggers. It is a valid C identifier for any
//!   non-raw Rust identifier, and two slots with the same name anywhere in the program are a
//!   link error instead of a silent mix-up.
//! * **[`Slot::get`] launders the pointer**: the static is immutable and its initialiser is
//!   visible to LLVM, which would otherwise fold `get()` into the compile-time default (and
//!   copy that default into `.rodata`), so bytes patched into the file would never be read.
//!   The record's address goes through [`core::hint::black_box`], after which the optimiser
//!   knows nothing about what it points to, and the terminating NUL is found with
//!   [`core::ptr::read_volatile`], so the reads happen at run time on the record itself.
//!   [`Slot::is_patched`] reads the `state` byte the same way.
//!
//! `black_box` is documented as best effort; on the targets this crate is used on it is an
//! empty inline-asm barrier, and the tests of this crate check the property on optimised,
//! LTO-linked binaries: they patch the file and run it again.
//!
//! # Targets
//!
//! Any target with a Rust compiler, e.g. `riscv32imc-unknown-none-elf` (ESP32-C3) and the
//! Xtensa ESP32 targets. ESP8266 (whose flash can only be read with aligned 32-bit loads) is
//! served by the C/C++ header, which copies values out of flash; this crate returns the value
//! in place.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::mem::size_of;

/// The 8 magic bytes that start every record: ASCII `TPSLOT`, then `0xA5 0x5A`.
pub const MAGIC: [u8; 8] = *b"TPSLOT\xA5\x5A";
/// The version of the slot format this crate writes.
pub const VERSION: u8 = 1;
/// Flag: the value is a secret; tools mask it in every output.
pub const SECRET: u16 = 1;
/// Flag: personalisation fails unless a value is given for this slot.
pub const REQUIRED: u16 = 2;
/// Largest capacity (value bytes, excluding the terminating NUL).
pub const MAX_CAPACITY: usize = 4096;
/// Longest key in bytes.
pub const MAX_KEY_LEN: usize = 31;
/// Size of the record header (everything before the value field).
pub const HEADER_LEN: usize = 48;
/// `state` of a record as compiled.
pub const STATE_DEFAULT: u8 = 0;
/// `state` of a record that `thinger-patch` has written.
pub const STATE_PATCHED: u8 = 1;

/// Size `V` of the value field for a capacity: `(capacity + 1)` rounded up to a multiple of 4.
pub const fn value_len(capacity: usize) -> usize {
    (capacity + 4) & !3
}

/// One slot record (slot format version 1) with a value field of `V` bytes.
///
/// Declare slots with [`slot!`]; `V` is always [`value_len`]`(capacity)`.
#[repr(C, align(4))]
pub struct Slot<const V: usize> {
    magic: [u8; 8],
    version: u8,
    state: u8,
    flags: [u8; 2],
    capacity: [u8; 2],
    key_len: u8,
    reserved: u8,
    key: [u8; 32],
    value: [u8; V],
}

const fn valid_key_byte(b: u8, first: bool) -> bool {
    b.is_ascii_alphabetic()
        || b == b'_'
        || (!first && (b.is_ascii_digit() || b == b'.' || b == b'-'))
}

impl<const V: usize> Slot<V> {
    /// Builds the record for `key` with room for `capacity` bytes, holding `default`, in state
    /// "default". Meant for const contexts, where every check below is a compile error.
    ///
    /// # Panics
    ///
    /// If `key` is not 1..=31 bytes matching `[A-Za-z_][A-Za-z0-9_.-]*`, `capacity` is not in
    /// 1..=4096, `V` is not [`value_len`]`(capacity)`, `default` is longer than `capacity` or
    /// contains a NUL byte, or `flags` has bits other than [`SECRET`] and [`REQUIRED`].
    pub const fn new(key: &str, capacity: usize, default: &str, flags: u16) -> Self {
        let k = key.as_bytes();
        assert!(
            !k.is_empty() && k.len() <= MAX_KEY_LEN,
            "thinger-slot: the key must be 1..=31 bytes"
        );
        let mut key_field = [0u8; 32];
        let mut i = 0;
        while i < k.len() {
            assert!(
                valid_key_byte(k[i], i == 0),
                "thinger-slot: the key must match [A-Za-z_][A-Za-z0-9_.-]*"
            );
            key_field[i] = k[i];
            i += 1;
        }
        assert!(
            capacity >= 1 && capacity <= MAX_CAPACITY,
            "thinger-slot: the capacity must be 1..=4096"
        );
        assert!(
            V == value_len(capacity),
            "thinger-slot: V must be value_len(capacity)"
        );
        assert!(
            size_of::<Self>() == HEADER_LEN + V,
            "thinger-slot: unexpected record layout"
        );
        assert!(
            flags & !(SECRET | REQUIRED) == 0,
            "thinger-slot: unknown flags (only SECRET and REQUIRED are defined)"
        );
        let d = default.as_bytes();
        assert!(
            d.len() <= capacity,
            "thinger-slot: the default is longer than the capacity"
        );
        let mut value = [0u8; V];
        let mut i = 0;
        while i < d.len() {
            assert!(
                d[i] != 0,
                "thinger-slot: the default must not contain a NUL byte"
            );
            value[i] = d[i];
            i += 1;
        }
        Slot {
            magic: MAGIC,
            version: VERSION,
            state: STATE_DEFAULT,
            flags: flags.to_le_bytes(),
            capacity: (capacity as u16).to_le_bytes(),
            key_len: k.len() as u8,
            reserved: 0,
            key: key_field,
            value,
        }
    }

    /// The address of the record, hidden from the optimiser (see the crate docs).
    #[inline(always)]
    fn laundered(&'static self) -> *const Self {
        core::hint::black_box(self as *const Self)
    }

    /// The current value: the bytes of the record's value field up to the first NUL, read at
    /// run time (so a value patched into the binary is seen). Invalid UTF-8 gives `""`.
    pub fn get(&'static self) -> &'static str {
        let record = self.laundered();
        // SAFETY: `record` is `self` (black_box returns its argument), a live `'static` record;
        // `&raw const` creates no reference. Reads stay within the V bytes of the value field.
        let value = unsafe { &raw const (*record).value }.cast::<u8>();
        let mut len = 0;
        // SAFETY: `len < V`, so `value.add(len)` is inside the value field.
        while len < V && unsafe { core::ptr::read_volatile(value.add(len)) } != 0 {
            len += 1;
        }
        // SAFETY: the first `len` bytes of the value field, immutable for the whole program.
        let bytes = unsafe { core::slice::from_raw_parts(value, len) };
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// `true` once `thinger-patch` has written a value into this record (`state` = 1).
    pub fn is_patched(&'static self) -> bool {
        let record = self.laundered();
        // SAFETY: as in `get`: a live record, read through a raw pointer.
        unsafe { core::ptr::read_volatile(&raw const (*record).state) == STATE_PATCHED }
    }

    /// The whole record (`48 + V` bytes) as it is in memory at run time, read through the
    /// laundered address (so patched bytes show).
    pub fn record_bytes(&'static self) -> &'static [u8] {
        let record = self.laundered();
        // SAFETY: `Self` is `repr(C)` with byte fields only and no padding (checked in `new`),
        // so all of its `size_of::<Self>()` bytes are initialised; immutable for the program.
        unsafe { core::slice::from_raw_parts(record.cast::<u8>(), size_of::<Self>()) }
    }

    /// The record's bytes as built (no laundering: for records that are not patched, e.g. in
    /// tests comparing with the spec's golden vectors).
    pub const fn as_bytes(&self) -> &[u8] {
        // SAFETY: see `record_bytes`.
        unsafe {
            core::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>())
        }
    }

    /// The key (never changed by patching).
    pub const fn key(&self) -> &str {
        let (key, _) = self.key.split_at(self.key_len as usize);
        match core::str::from_utf8(key) {
            Ok(key) => key,
            Err(_) => "",
        }
    }

    /// The capacity: the largest value in bytes, excluding the terminating NUL.
    pub const fn capacity(&self) -> usize {
        u16::from_le_bytes(self.capacity) as usize
    }

    /// The flags ([`SECRET`], [`REQUIRED`]).
    pub const fn flags(&self) -> u16 {
        u16::from_le_bytes(self.flags)
    }

    /// Whether the [`SECRET`] flag is set.
    pub const fn is_secret(&self) -> bool {
        self.flags() & SECRET != 0
    }

    /// Whether the [`REQUIRED`] flag is set.
    pub const fn is_required(&self) -> bool {
        self.flags() & REQUIRED != 0
    }
}

/// Declares a slot: a `static` [`Slot`] that `thinger-patch` can fill in after the build.
///
/// ```standalone_crate
/// thinger_slot::slot!(pub static WIFI_SSID: "wifi_ssid", capacity = 32, default = "", flags = thinger_slot::REQUIRED);
/// thinger_slot::slot!(static FW_VERSION: "fw.version", capacity = 16, default = "dev"); // flags: 0
/// thinger_slot::slot!(
///     /// Doc comments and other attributes go first.
///     pub(crate) static API_KEY: "api_key",
///     capacity = 64,
///     default = "",
///     flags = thinger_slot::SECRET | thinger_slot::REQUIRED,
/// );
/// assert_eq!(FW_VERSION.get(), "dev");
/// assert!(API_KEY.is_secret() && API_KEY.is_required());
/// ```
///
/// The key must be a string literal (it also names the section,
/// `.rodata.thinger_slot.<key>`); capacity, default and flags may be any constant
/// expressions. The static is exported as `THINGER_SLOT_<NAME>` (see the crate docs).
///
/// Invalid declarations are compile errors (E0080, a panic during const evaluation):
///
/// ```compile_fail,E0080
/// // A key longer than 31 bytes.
/// thinger_slot::slot!(static K: "a_key_that_is_much_too_long_for_a_slot", capacity = 8, default = "");
/// ```
///
/// ```compile_fail,E0080
/// // A key that does not match [A-Za-z_][A-Za-z0-9_.-]*.
/// thinger_slot::slot!(static K: "wifi ssid", capacity = 8, default = "");
/// ```
///
/// ```compile_fail,E0080
/// // Capacity 0 (allowed: 1..=4096).
/// thinger_slot::slot!(static K: "k", capacity = 0, default = "");
/// ```
///
/// ```compile_fail,E0080
/// // Flags other than SECRET and REQUIRED.
/// thinger_slot::slot!(static K: "k", capacity = 8, default = "", flags = 4);
/// ```
#[macro_export]
macro_rules! slot {
    (
        $(#[$meta:meta])*
        $vis:vis static $name:ident : $key:literal,
        capacity = $capacity:expr,
        default = $default:expr
        $(, flags = $flags:expr)?
        $(,)?
    ) => {
        $(#[$meta])*
        #[used]
        #[unsafe(export_name = concat!("THINGER_SLOT_", stringify!($name)))]
        #[unsafe(link_section = concat!(".rodata.thinger_slot.", $key))]
        $vis static $name: $crate::Slot<{ $crate::value_len($capacity) }> =
            $crate::Slot::new($key, $capacity, $default, 0 $(| $flags)?);
    };
}

/// Declares the six standard Thinger.io slots (spec §3), like `THINGER_STANDARD_SLOTS()` in C:
///
/// | static | key | capacity | default | flags |
/// |---|---|---|---|---|
/// | `WIFI_SSID` | `wifi_ssid` | 32 | `""` | `REQUIRED` |
/// | `WIFI_PASSWORD` | `wifi_password` | 64 | `""` | `SECRET` |
/// | `THINGER_HOST` | `thinger_host` | 64 | `"iot.thinger.io"` | |
/// | `THINGER_USER` | `thinger_user` | 32 | `""` | `REQUIRED` |
/// | `THINGER_DEVICE` | `thinger_device` | 32 | `""` | `REQUIRED` |
/// | `THINGER_CREDENTIALS` | `thinger_credentials` | 64 | `""` | `SECRET \| REQUIRED` |
///
/// An optional visibility applies to all six: `standard_slots!(pub);`.
///
/// ```standalone_crate
/// thinger_slot::standard_slots!();
/// assert_eq!(THINGER_HOST.get(), "iot.thinger.io");
/// assert!(THINGER_CREDENTIALS.is_secret());
/// ```
#[macro_export]
macro_rules! standard_slots {
    (@declare [$($vis:tt)*]) => {
        $crate::slot!($($vis)* static WIFI_SSID: "wifi_ssid", capacity = 32, default = "", flags = $crate::REQUIRED);
        $crate::slot!($($vis)* static WIFI_PASSWORD: "wifi_password", capacity = 64, default = "", flags = $crate::SECRET);
        $crate::slot!($($vis)* static THINGER_HOST: "thinger_host", capacity = 64, default = "iot.thinger.io");
        $crate::slot!($($vis)* static THINGER_USER: "thinger_user", capacity = 32, default = "", flags = $crate::REQUIRED);
        $crate::slot!($($vis)* static THINGER_DEVICE: "thinger_device", capacity = 32, default = "", flags = $crate::REQUIRED);
        $crate::slot!(
            $($vis)* static THINGER_CREDENTIALS: "thinger_credentials",
            capacity = 64,
            default = "",
            flags = $crate::SECRET | $crate::REQUIRED
        );
    };
    () => {
        $crate::standard_slots!(@declare []);
    };
    ($vis:vis) => {
        $crate::standard_slots!(@declare [$vis]);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(core::mem::align_of::<Slot<4>>(), 4);
        assert_eq!(size_of::<Slot<4>>(), 52);
        assert_eq!(size_of::<Slot<4100>>(), 4148);
        assert_eq!(value_len(1), 4);
        assert_eq!(value_len(3), 4);
        assert_eq!(value_len(4), 8);
        assert_eq!(value_len(32), 36);
        assert_eq!(value_len(4096), 4100);
    }

    #[test]
    fn accessors() {
        const S: Slot<68> = Slot::new("fw.version-2", 64, "dev", SECRET);
        assert_eq!(S.key(), "fw.version-2");
        assert_eq!(S.capacity(), 64);
        assert_eq!(S.flags(), SECRET);
        assert!(S.is_secret() && !S.is_required());
        assert_eq!(&S.as_bytes()[..8], &MAGIC);
    }

    slot!(static LAUNDERED: "laundered", capacity = 8, default = "abc");

    #[test]
    fn get_reads_the_record() {
        assert_eq!(LAUNDERED.get(), "abc");
        assert!(!LAUNDERED.is_patched());
        assert_eq!(LAUNDERED.record_bytes(), LAUNDERED.as_bytes());
        assert_eq!(
            LAUNDERED.get().as_ptr(),
            LAUNDERED.record_bytes()[HEADER_LEN..].as_ptr()
        );
    }
}
