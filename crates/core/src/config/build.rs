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

/// Flash modes, as esptool and espflash name them.
pub const FLASH_MODES: &[&str] = &["qio", "qout", "dio", "dout"];
/// Flash sizes an image header can encode.
pub const FLASH_SIZES: &[&str] = &[
    "1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB", "256MB",
];
/// Flash frequencies (not every chip supports every one; the converter checks).
pub const FLASH_FREQS: &[&str] = &[
    "12MHz", "15MHz", "16MHz", "20MHz", "24MHz", "26MHz", "30MHz", "40MHz", "48MHz", "60MHz",
    "80MHz",
];

/// The `[build]` table, validated. `None` means "not set here" (a flag, the
/// target triple, the ELF or the converter's default decides).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSettings {
    pub chip: Option<Chip>,
    /// One of [`FLASH_MODES`].
    pub flash_mode: Option<&'static str>,
    /// One of [`FLASH_SIZES`].
    pub flash_size: Option<&'static str>,
    /// One of [`FLASH_FREQS`].
    pub flash_freq: Option<&'static str>,
    /// As written; relative paths are relative to the config file's folder.
    pub partition_table: Option<String>,
    /// As written; relative paths are relative to the config file's folder.
    pub bootloader: Option<String>,
    pub partition_table_offset: Option<u32>,
    pub target_app_partition: Option<String>,
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

/// `DIO`, `dio` → `dio`.
pub fn flash_mode(text: &str) -> Result<&'static str, String> {
    let t = text.trim().to_ascii_lowercase();
    FLASH_MODES
        .iter()
        .copied()
        .find(|m| *m == t)
        .ok_or_else(|| {
            format!(
                "unknown flash mode {text:?}; expected one of {}",
                FLASH_MODES.join(", ")
            )
        })
}

/// `4MB`, `4mb`, `4M` → `4MB`.
pub fn flash_size(text: &str) -> Result<&'static str, String> {
    let mut t = text.trim().to_ascii_uppercase();
    if t.ends_with('M') {
        t.push('B');
    }
    FLASH_SIZES
        .iter()
        .copied()
        .find(|s| *s == t)
        .ok_or_else(|| {
            format!(
                "unknown flash size {text:?}; expected one of {}",
                FLASH_SIZES.join(", ")
            )
        })
}

/// `80MHz`, `80mhz`, `80m` (esptool's spelling), `80` → `80MHz`.
pub fn flash_freq(text: &str) -> Result<&'static str, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t
        .strip_suffix("mhz")
        .or_else(|| t.strip_suffix('m'))
        .unwrap_or(&t);
    FLASH_FREQS
        .iter()
        .copied()
        .find(|f| f.strip_suffix("MHz") == Some(digits))
        .ok_or_else(|| {
            format!(
                "unknown flash frequency {text:?}; expected one of {}",
                FLASH_FREQS.join(", ")
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
                flash_mode: Some("dio"),
                flash_size: Some("4MB"),
                flash_freq: Some("80MHz"),
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
        assert_eq!(flash_freq("40"), Ok("40MHz"));
        assert_eq!(flash_freq("26MHz"), Ok("26MHz"));
        assert!(flash_freq("41m").is_err());
        assert_eq!(flash_size("16mb"), Ok("16MB"));
        assert_eq!(flash_mode(" qio "), Ok("qio"));
    }
}
