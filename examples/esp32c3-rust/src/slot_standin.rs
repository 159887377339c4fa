//! TEMPORARY stand-in for `thinger_slot` (device/rust) until that crate exists. Same record
//! layout as docs/slot-format.md.
#![allow(dead_code)]

pub const SECRET: u16 = 1;
pub const REQUIRED: u16 = 2;

#[repr(C, align(4))]
pub struct Slot<const V: usize> {
    header: [u8; 48],
    value: [u8; V],
}

impl<const V: usize> Slot<V> {
    pub const fn new(key: &str, capacity: u16, default: &str, flags: u16) -> Self {
        let mut header = [0u8; 48];
        let magic = *b"TPSLOT\xA5\x5A";
        let mut i = 0;
        while i < 8 {
            header[i] = magic[i];
            i += 1;
        }
        header[8] = 1;
        header[10] = flags as u8;
        header[11] = (flags >> 8) as u8;
        header[12] = capacity as u8;
        header[13] = (capacity >> 8) as u8;
        let k = key.as_bytes();
        header[14] = k.len() as u8;
        i = 0;
        while i < k.len() {
            header[16 + i] = k[i];
            i += 1;
        }
        let mut value = [0u8; V];
        let d = default.as_bytes();
        assert!(d.len() <= capacity as usize);
        i = 0;
        while i < d.len() {
            value[i] = d[i];
            i += 1;
        }
        Slot { header, value }
    }

    fn base(&'static self) -> *const u8 {
        let mut p = self as *const Self as *const u8;
        // The optimiser cannot see through this: the bytes are whatever is in flash.
        unsafe { core::arch::asm!("/* {0} */", inout(reg) p, options(pure, nomem, nostack)) };
        p
    }

    pub fn get(&'static self) -> &'static str {
        let p = self.base();
        let mut n = 0;
        while n < V && unsafe { *p.add(48 + n) } != 0 {
            n += 1;
        }
        let bytes = unsafe { core::slice::from_raw_parts(p.add(48), n) };
        core::str::from_utf8(bytes).unwrap_or("")
    }

    pub fn is_patched(&'static self) -> bool {
        unsafe { *self.base().add(9) == 1 }
    }
}

macro_rules! slot {
    ($vis:vis static $name:ident : $key:literal, capacity = $cap:expr, default = $def:expr
     $(, flags = $flags:expr)? $(,)?) => {
        #[used]
        #[unsafe(link_section = concat!(".rodata.thinger_slot.", $key))]
        $vis static $name: $crate::thinger_slot::Slot<{ ($cap + 4) & !3 }> =
            $crate::thinger_slot::Slot::new($key, $cap, $def, 0 $(| $flags)?);
    };
}
pub(crate) use slot;

macro_rules! standard_slots {
    () => {
        $crate::thinger_slot::slot!(pub static WIFI_SSID: "wifi_ssid", capacity = 32, default = "", flags = $crate::thinger_slot::REQUIRED);
        $crate::thinger_slot::slot!(pub static WIFI_PASSWORD: "wifi_password", capacity = 64, default = "", flags = $crate::thinger_slot::SECRET | $crate::thinger_slot::REQUIRED);
        $crate::thinger_slot::slot!(pub static THINGER_HOST: "thinger_host", capacity = 64, default = "iot.thinger.io");
        $crate::thinger_slot::slot!(pub static THINGER_USER: "thinger_user", capacity = 32, default = "", flags = $crate::thinger_slot::REQUIRED);
        $crate::thinger_slot::slot!(pub static THINGER_DEVICE: "thinger_device", capacity = 32, default = "", flags = $crate::thinger_slot::REQUIRED);
        $crate::thinger_slot::slot!(pub static THINGER_CREDENTIALS: "thinger_credentials", capacity = 64, default = "", flags = $crate::thinger_slot::SECRET | $crate::thinger_slot::REQUIRED);
    };
}
pub(crate) use standard_slots;
