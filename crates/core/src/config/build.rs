//! The `[build]` table of `thinger-patch.toml`: how a build front end
//! (`cargo thinger-patch`) turns the firmware ELF it built into a flashable
//! image — chip, flash settings, partition table, bootloader. Parsing and
//! validation only: paths stay as written (relative to the config file) and
//! nothing is read here.
//!
//! ```toml
//! [build]
//! chip = "esp32c3"                  # else inferred from the target triple and the ELF
//! flash_mode = "dio"                # qio, qout, dio, dout
//! flash_size = "4MB"                # 1MB .. 256MB
//! flash_freq = "40MHz"              # 12MHz .. 80MHz (also "40m")
//! partition_table = "partitions.csv" # CSV or binary; relative to this file
//! bootloader = "bootloader.bin"     # else the converter's bundled one
//! partition_table_offset = 0x8000
//! target_app_partition = "factory"
//! merged = false                    # true: bootloader + partition table + app in one file
//! ```

use crate::Chip;
use crate::config::Config;

/// Every key the `[build]` table may hold.
pub const KEYS: &[&str] = &[
    "chip",
    "flash_mode",
    "flash_size",
    "flash_freq",
    "partition_table",
    "bootloader",
    "partition_table_offset",
    "target_app_partition",
    "merged",
];

/// Declares a flash setting: an enum whose variants carry the names esptool and espflash use.
macro_rules! setting {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $v:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $v),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The name esptool and espflash use.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$v => $text),+
                }
            }

            /// Every name, comma-separated, for messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

setting!(
    /// SPI flash mode.
    FlashMode, "flash mode", {
        /// Quad I/O.
        Qio = "qio",
        /// Quad output.
        Qout = "qout",
        /// Dual I/O.
        Dio = "dio",
        /// Dual output.
        Dout = "dout",
    }
);

setting!(
    /// Flash size an image header can encode.
    FlashSize, "flash size", {
        /// 1 MB.
        Mb1 = "1MB",
        /// 2 MB.
        Mb2 = "2MB",
        /// 4 MB.
        Mb4 = "4MB",
        /// 8 MB.
        Mb8 = "8MB",
        /// 16 MB.
        Mb16 = "16MB",
        /// 32 MB.
        Mb32 = "32MB",
        /// 64 MB.
        Mb64 = "64MB",
        /// 128 MB.
        Mb128 = "128MB",
        /// 256 MB.
        Mb256 = "256MB",
    }
);

setting!(
    /// Flash frequency (not every chip supports every one; the converter checks).
    FlashFreq, "flash frequency", {
        /// 12 MHz.
        Mhz12 = "12MHz",
        /// 15 MHz.
        Mhz15 = "15MHz",
        /// 16 MHz.
        Mhz16 = "16MHz",
        /// 20 MHz.
        Mhz20 = "20MHz",
        /// 24 MHz.
        Mhz24 = "24MHz",
        /// 26 MHz.
        Mhz26 = "26MHz",
        /// 30 MHz.
        Mhz30 = "30MHz",
        /// 40 MHz.
        Mhz40 = "40MHz",
        /// 48 MHz.
        Mhz48 = "48MHz",
        /// 60 MHz.
        Mhz60 = "60MHz",
        /// 80 MHz.
        Mhz80 = "80MHz",
    }
);

/// The `[build]` table, validated. `None` means "not set here" (a flag, the
/// target triple, the ELF or the converter's default decides).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSettings {
    /// The chip.
    pub chip: Option<Chip>,
    /// SPI flash mode.
    pub flash_mode: Option<FlashMode>,
    /// Flash size.
    pub flash_size: Option<FlashSize>,
    /// Flash frequency.
    pub flash_freq: Option<FlashFreq>,
    /// As written; relative paths are relative to the config file's folder.
    pub partition_table: Option<String>,
    /// As written; relative paths are relative to the config file's folder.
    pub bootloader: Option<String>,
    /// Where the partition table goes on the flash.
    pub partition_table_offset: Option<u32>,
    /// The app partition the image is for (`factory`, `ota_0`, ...).
    pub target_app_partition: Option<String>,
    /// Write one merged file (bootloader, partition table, app).
    pub merged: Option<bool>,
}

impl BuildSettings {
    /// The `[build]` table of a parsed config file (all `None` when it has none).
    pub fn from_config(config: &Config) -> Result<BuildSettings, String> {
        match config.reserved.get("build") {
            Some(t) => BuildSettings::from_table(t, &config.label),
            None => Ok(BuildSettings::default()),
        }
    }

    /// Validates a `[build]` table; `label` names the file in errors.
    pub fn from_table(table: &toml::Table, label: &str) -> Result<BuildSettings, String> {
        let mut s = BuildSettings::default();
        for (key, value) in table {
            let err = |m: String| format!("{label}: [build] {key}: {m}");
            let text = || {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("expected a string, found {}", value.type_str())))
            };
            match key.as_str() {
                "chip" => {
                    let name = text()?;
                    let chip = Chip::from_name(&name).ok_or_else(|| {
                        err(format!(
                            "unknown chip {name:?}; expected one of {}",
                            chip_names()
                        ))
                    })?;
                    s.chip = Some(chip);
                }
                "flash_mode" => s.flash_mode = Some(flash_mode(&text()?).map_err(err)?),
                "flash_size" => s.flash_size = Some(flash_size(&text()?).map_err(err)?),
                "flash_freq" => s.flash_freq = Some(flash_freq(&text()?).map_err(err)?),
                "partition_table" => s.partition_table = Some(non_empty(text()?).map_err(err)?),
                "bootloader" => s.bootloader = Some(non_empty(text()?).map_err(err)?),
                "target_app_partition" => {
                    s.target_app_partition = Some(non_empty(text()?).map_err(err)?)
                }
                "partition_table_offset" => {
                    let v = value.as_integer().ok_or_else(|| {
                        err(format!(
                            "expected an integer such as 0x8000, found {}",
                            value.type_str()
                        ))
                    })?;
                    let v = u32::try_from(v)
                        .ok()
                        .filter(|v| v.is_multiple_of(0x1000))
                        .ok_or_else(|| {
                            err(format!(
                                "{v:#x} is not a flash offset aligned to 0x1000 (4 KiB)"
                            ))
                        })?;
                    s.partition_table_offset = Some(v);
                }
                "merged" => {
                    s.merged = Some(value.as_bool().ok_or_else(|| {
                        err(format!(
                            "expected true or false, found {}",
                            value.type_str()
                        ))
                    })?)
                }
                other => {
                    let snake = other.replace('-', "_");
                    let hint = if KEYS.contains(&snake.as_str()) {
                        format!(" (did you mean {snake}?)")
                    } else {
                        String::new()
                    };
                    return Err(format!(
                        "{label}: unknown key {other:?} in [build]{hint}; expected {}",
                        KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(s)
    }
}

fn non_empty(s: String) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s)
    }
}

fn chip_names() -> String {
    Chip::esp32_family()
        .map(Chip::name)
        .chain(std::iter::once("esp8266"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `DIO`, `dio` → [`FlashMode::Dio`].
pub fn flash_mode(text: &str) -> Result<FlashMode, String> {
    let t = text.trim().to_ascii_lowercase();
    FlashMode::ALL
        .iter()
        .copied()
        .find(|m| m.name() == t)
        .ok_or_else(|| {
            format!(
                "unknown flash mode {text:?}; expected one of {}",
                FlashMode::names()
            )
        })
}

/// `4MB`, `4mb`, `4M` → [`FlashSize::Mb4`].
pub fn flash_size(text: &str) -> Result<FlashSize, String> {
    let mut t = text.trim().to_ascii_uppercase();
    if t.ends_with('M') {
        t.push('B');
    }
    FlashSize::ALL
        .iter()
        .copied()
        .find(|s| s.name() == t)
        .ok_or_else(|| {
            format!(
                "unknown flash size {text:?}; expected one of {}",
                FlashSize::names()
            )
        })
}

/// `80MHz`, `80mhz`, `80m` (esptool's spelling), `80` → [`FlashFreq::Mhz80`].
pub fn flash_freq(text: &str) -> Result<FlashFreq, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t
        .strip_suffix("mhz")
        .or_else(|| t.strip_suffix('m'))
        .unwrap_or(&t);
    FlashFreq::ALL
        .iter()
        .copied()
        .find(|f| f.name().strip_suffix("MHz") == Some(digits))
        .ok_or_else(|| {
            format!(
                "unknown flash frequency {text:?}; expected one of {}",
                FlashFreq::names()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BuildSettings, String> {
        let config = Config::parse(text, "t.toml").map_err(|e| e.to_string())?;
        BuildSettings::from_config(&config)
    }

    #[test]
    fn full_table() {
        let s = parse(
            r#"
[build]
chip = "ESP32-C3"
flash_mode = "DIO"
flash_size = "4M"
flash_freq = "80m"
partition_table = "partitions.csv"
bootloader = "bl.bin"
partition_table_offset = 0x8000
target_app_partition = "factory"
merged = true
"#,
        )
        .unwrap();
        assert_eq!(
            s,
            BuildSettings {
                chip: Some(Chip::Esp32c3),
                flash_mode: Some(FlashMode::Dio),
                flash_size: Some(FlashSize::Mb4),
                flash_freq: Some(FlashFreq::Mhz80),
                partition_table: Some("partitions.csv".into()),
                bootloader: Some("bl.bin".into()),
                partition_table_offset: Some(0x8000),
                target_app_partition: Some("factory".into()),
                merged: Some(true),
            }
        );
    }

    #[test]
    fn absent_table_is_empty() {
        assert_eq!(
            parse("[defaults]\na = \"b\"\n").unwrap(),
            BuildSettings::default()
        );
    }

    #[test]
    fn errors_name_file_key_and_choices() {
        let e = parse("[build]\nflash-mode = \"dio\"\n").unwrap_err();
        assert!(
            e.contains("t.toml") && e.contains("did you mean flash_mode"),
            "{e}"
        );
        let e = parse("[build]\nchip = \"esp99\"\n").unwrap_err();
        assert!(e.contains("[build] chip") && e.contains("esp32c3"), "{e}");
        let e = parse("[build]\nflash_size = \"3MB\"\n").unwrap_err();
        assert!(e.contains("4MB"), "{e}");
        let e = parse("[build]\npartition_table_offset = 0x8001\n").unwrap_err();
        assert!(e.contains("0x8001"), "{e}");
        let e = parse("[build]\nmerged = \"yes\"\n").unwrap_err();
        assert!(e.contains("true or false"), "{e}");
    }

    #[test]
    fn spellings() {
        assert_eq!(flash_freq("40"), Ok(FlashFreq::Mhz40));
        assert_eq!(flash_freq("26MHz"), Ok(FlashFreq::Mhz26));
        assert!(flash_freq("41m").is_err());
        assert_eq!(flash_size("16mb"), Ok(FlashSize::Mb16));
        assert_eq!(flash_mode(" qio "), Ok(FlashMode::Qio));
        assert_eq!(FlashFreq::Mhz80.to_string(), "80MHz");
    }
}
