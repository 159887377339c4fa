//! The image settings of one run: flags win over the `[build]` table of
//! `thinger-patch.toml`, whose paths are relative to the config file.

use crate::{CliResult, ImageArgs};
use std::path::{Path, PathBuf};
use thinger_patch_cli::args::LoadedConfig;
use thinger_patch_cli::exit::{self, CliError};
use thinger_patch_core::Chip;
use thinger_patch_core::config::build::{self, BuildSettings};
use thinger_patch_delivery::convert::{ImageSettings, Sourced};

/// Flags win over the `[build]` table; its paths are relative to the config file.
pub fn image_settings(args: &ImageArgs, config: Option<&LoadedConfig>) -> CliResult<ImageSettings> {
    let build = match config {
        Some(lc) => {
            BuildSettings::from_config(&lc.config).map_err(|m| CliError::new(exit::INVALID, m))?
        }
        None => BuildSettings::default(),
    };
    let file = config.map(|lc| lc.path.display().to_string());
    let from_table = |key: &str| format!("[build] {key} in {}", file.as_deref().unwrap_or("?"));
    let base = config
        .and_then(|lc| lc.path.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let usage = |m: String| CliError::new(exit::USAGE, m);
    let chip = match &args.chip {
        Some(name) => Some(Sourced {
            value: Chip::from_name(name).ok_or_else(|| {
                usage(format!(
                    "--chip {name}: unknown chip; expected one of {}",
                    Chip::esp32_family()
                        .map(Chip::name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
            from: "--chip".into(),
        }),
        None => build.chip.map(|c| Sourced {
            value: c,
            from: from_table("chip"),
        }),
    };
    fn pick<T: Copy>(
        flag: &Option<String>,
        table: Option<T>,
        parse: fn(&str) -> Result<T, String>,
        name: &str,
    ) -> CliResult<Option<T>> {
        match flag {
            Some(v) => parse(v)
                .map(Some)
                .map_err(|m| CliError::new(exit::USAGE, format!("--{name}: {m}"))),
            None => Ok(table),
        }
    }
    let file_setting = |flag: &Option<PathBuf>,
                        table: &Option<String>,
                        key: &str,
                        flag_name: &str| {
        let s = match (flag, table) {
            (Some(p), _) => Sourced {
                value: p.clone(),
                from: format!("--{flag_name}"),
            },
            (None, Some(p)) => Sourced {
                value: base.join(p),
                from: from_table(key),
            },
            (None, None) => return Ok(None),
        };
        if !s.value.is_file() {
            return Err(CliError::new(
                exit::IO,
                format!(
                    "{}: no such file (from {}); fix the path (relative paths in [build] are relative to the config file)",
                    s.value.display(),
                    s.from
                ),
            ));
        }
        Ok(Some(s))
    };
    Ok(ImageSettings {
        chip,
        flash_mode: pick(
            &args.flash_mode,
            build.flash_mode,
            build::flash_mode,
            "flash-mode",
        )?,
        flash_size: pick(
            &args.flash_size,
            build.flash_size,
            build::flash_size,
            "flash-size",
        )?,
        flash_freq: pick(
            &args.flash_freq,
            build.flash_freq,
            build::flash_freq,
            "flash-freq",
        )?,
        partition_table: file_setting(
            &args.partition_table,
            &build.partition_table,
            "partition_table",
            "partition-table",
        )?,
        bootloader: file_setting(
            &args.bootloader,
            &build.bootloader,
            "bootloader",
            "bootloader",
        )?,
        partition_table_offset: args.partition_table_offset.or(build.partition_table_offset),
        target_app_partition: args
            .target_app_partition
            .clone()
            .or(build.target_app_partition),
        merged: args.merged || build.merged.unwrap_or(false),
    })
}
