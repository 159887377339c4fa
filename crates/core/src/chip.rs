//! The chips thinger-patch knows, with the facts an image carries about them.

use serde::Serialize;
use std::fmt;

/// An Espressif chip, as named by an image's `chip_id` field or inferred from an ELF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chip {
    /// ESP8266 (Xtensa LX106).
    Esp8266,
    /// ESP32 (Xtensa LX6).
    Esp32,
    /// ESP32-S2.
    Esp32s2,
    /// ESP32-S3.
    Esp32s3,
    /// ESP32-C2 (ESP8684).
    Esp32c2,
    /// ESP32-C3.
    Esp32c3,
    /// ESP32-C5.
    Esp32c5,
    /// ESP32-C6.
    Esp32c6,
    /// ESP32-C61.
    Esp32c61,
    /// ESP32-H2.
    Esp32h2,
    /// ESP32-H4.
    Esp32h4,
    /// ESP32-P4.
    Esp32p4,
}

/// `(chip, chip_id, second-stage bootloader flash offset)` for the ESP32 family
/// (ESP-IDF `esp_app_format.h`, esptool's ROM classes).
const ESP32_FAMILY: &[(Chip, u16, u32)] = &[
    (Chip::Esp32, 0, 0x1000),
    (Chip::Esp32s2, 2, 0x1000),
    (Chip::Esp32c3, 5, 0x0),
    (Chip::Esp32s3, 9, 0x0),
    (Chip::Esp32c2, 12, 0x0),
    (Chip::Esp32c6, 13, 0x0),
    (Chip::Esp32h2, 16, 0x0),
    (Chip::Esp32p4, 18, 0x2000),
    (Chip::Esp32c61, 20, 0x0),
    (Chip::Esp32c5, 23, 0x2000),
    (Chip::Esp32h4, 28, 0x2000),
];

impl Chip {
    /// Every chip of the ESP32 family, in `chip_id` order.
    pub fn esp32_family() -> impl Iterator<Item = Chip> {
        ESP32_FAMILY.iter().map(|&(chip, _, _)| chip)
    }

    /// The chip an ESP32-family image header's `chip_id` names.
    pub fn from_chip_id(id: u16) -> Option<Chip> {
        ESP32_FAMILY.iter().find(|e| e.1 == id).map(|e| e.0)
    }

    /// The `chip_id` an ESP32-family image for this chip carries (`None` for the ESP8266).
    pub fn chip_id(self) -> Option<u16> {
        ESP32_FAMILY.iter().find(|e| e.0 == self).map(|e| e.1)
    }

    /// Where the ROM loads the second-stage bootloader from, i.e. where a merged
    /// image's first image sits. The ESP8266 boots whatever is at 0x0.
    pub fn bootloader_offset(self) -> u32 {
        ESP32_FAMILY.iter().find(|e| e.0 == self).map_or(0, |e| e.2)
    }

    /// The name esptool and espflash use (`esp32c3`).
    pub fn name(self) -> &'static str {
        match self {
            Chip::Esp8266 => "esp8266",
            Chip::Esp32 => "esp32",
            Chip::Esp32s2 => "esp32s2",
            Chip::Esp32s3 => "esp32s3",
            Chip::Esp32c2 => "esp32c2",
            Chip::Esp32c3 => "esp32c3",
            Chip::Esp32c5 => "esp32c5",
            Chip::Esp32c6 => "esp32c6",
            Chip::Esp32c61 => "esp32c61",
            Chip::Esp32h2 => "esp32h2",
            Chip::Esp32h4 => "esp32h4",
            Chip::Esp32p4 => "esp32p4",
        }
    }

    /// Parses an esptool-style chip name (`esp32c3`, `ESP32-C3`).
    pub fn from_name(name: &str) -> Option<Chip> {
        let norm: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        std::iter::once(Chip::Esp8266)
            .chain(Chip::esp32_family())
            .find(|c| c.name() == norm)
    }
}

impl fmt::Display for Chip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for chip in Chip::esp32_family() {
            assert_eq!(Chip::from_chip_id(chip.chip_id().unwrap()), Some(chip));
            assert_eq!(Chip::from_name(chip.name()), Some(chip));
        }
        assert_eq!(Chip::from_name("ESP32-C3"), Some(Chip::Esp32c3));
        assert_eq!(Chip::from_name("esp8266"), Some(Chip::Esp8266));
        assert_eq!(Chip::from_chip_id(1), None);
        assert_eq!(Chip::Esp32.bootloader_offset(), 0x1000);
        assert_eq!(Chip::Esp32c5.bootloader_offset(), 0x2000);
    }
}
