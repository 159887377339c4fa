//! `cargo thinger-patch`: build ESP32-family Rust firmware once with cargo,
//! then write one personalised, flashable image per credential profile.
//!
//! This crate only parses arguments, runs cargo and converts ELFs to images;
//! every value goes through thinger-patch's `PersonalizeArgs` and
//! `personalize()`, exactly as in `thinger-patch patch`.

mod cargo_build;
mod image;

use cargo_build::{BuildRequest, Built};
use clap::{Args, Parser};
use image::{ImageSettings, Sourced};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thinger_patch_cli::args::{LoadedConfig, PersonalizeArgs, result_warnings};
use thinger_patch_cli::exit::{self, CliError};
use thinger_patch_cli::fsio;
use thinger_patch_core::config::FILE_NAME;
use thinger_patch_core::config::build::{self, BuildSettings};
use thinger_patch_core::personalize::{Personalized, SlotOutcome};
use thinger_patch_core::{Chip, Firmware, personalize};

type CliResult<T = i32> = Result<T, CliError>;

#[derive(Debug, Parser)]
#[command(
    name = "cargo-thinger-patch",
    bin_name = "cargo thinger-patch",
    version,
    about = "Build ESP32-family firmware with cargo, then write one personalised, flashable image per credential profile",
    long_about = "Build ESP32-family firmware with cargo, then write one personalised, flashable image per credential profile.\n\n\
        Runs `cargo build --message-format=json-render-diagnostics`, takes the firmware ELF from cargo's messages, personalises a copy per \
        --profile (values from thinger-patch.toml, --set-env, --set) and converts it with espflash into \
        <target-dir>/<triple>/<cargo-profile>/<bin>.<profile>.bin, with the personalised ELF beside it as <bin>.<profile>.elf. \
        cargo's own files are never modified, so switching profiles compiles nothing.\n\n\
        --profile is a thinger-patch credential profile; cargo's profile is --release or --cargo-profile NAME.",
    after_help = "Chip, flash settings, partition table and bootloader: flags, else the [build] table of thinger-patch.toml; \
        the chip is otherwise inferred from the target triple and the ELF.\n\
        Exit codes: 0 ok, 1 invalid input, refused operation or failed build, 2 usage error, 3 I/O error."
)]
struct Cli {
    #[command(flatten, next_help_heading = "Personalisation")]
    personalize: PersonalizeArgs,
    #[command(flatten, next_help_heading = "Cargo")]
    cargo: CargoArgs,
    #[command(flatten, next_help_heading = "Image")]
    image: ImageArgs,
    /// Print a JSON manifest (secret values masked) instead of the human report
    #[arg(long, help_heading = "Output")]
    json: bool,
}

#[derive(Debug, Args)]
struct CargoArgs {
    /// Build with cargo's release profile
    #[arg(long, conflicts_with = "cargo_profile")]
    release: bool,
    /// Build with this cargo profile (cargo's --profile; --profile here is a credential profile)
    #[arg(long, value_name = "NAME")]
    cargo_profile: Option<String>,
    /// Package to build (cargo's --package)
    #[arg(short = 'p', long, value_name = "SPEC")]
    package: Option<String>,
    /// The firmware binary, when the package has several
    #[arg(long, value_name = "NAME")]
    bin: Option<String>,
    /// Target triple [default: cargo's, e.g. build.target in .cargo/config.toml]
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Features to activate (cargo's --features; repeatable)
    #[arg(short = 'F', long, value_name = "FEATURES")]
    features: Vec<String>,
    /// Activate all features
    #[arg(long)]
    all_features: bool,
    /// Do not activate the default feature
    #[arg(long)]
    no_default_features: bool,
    /// The package's Cargo.toml (thinger-patch.toml is then looked for from its folder up).
    /// Cargo reads .cargo/config.toml from the current folder, not from here
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// More arguments for `cargo build` (e.g. -- --locked)
    #[arg(last = true, value_name = "CARGO BUILD ARGS")]
    extra: Vec<String>,
}

#[derive(Debug, Args)]
struct ImageArgs {
    /// Write bootloader + partition table + app in one file (for flashing at offset 0)
    #[arg(long)]
    merged: bool,
    /// Chip [default: [build] chip, else inferred from the target triple and the ELF]
    #[arg(long, value_name = "CHIP")]
    chip: Option<String>,
    /// Flash mode: qio, qout, dio, dout [default: [build] flash_mode, else the bootloader's (dio)]
    #[arg(long, value_name = "MODE")]
    flash_mode: Option<String>,
    /// Flash size: 1MB .. 256MB [default: [build] flash_size, else 4MB]
    #[arg(long, value_name = "SIZE")]
    flash_size: Option<String>,
    /// Flash frequency, e.g. 40MHz or 80m [default: [build] flash_freq, else the chip's]
    #[arg(long, value_name = "FREQ")]
    flash_freq: Option<String>,
    /// Partition table, CSV or binary [default: [build] partition_table, else espflash's default]
    #[arg(long, value_name = "FILE")]
    partition_table: Option<PathBuf>,
    /// Second-stage bootloader image [default: [build] bootloader, else espflash's bundled one]
    #[arg(long, value_name = "FILE")]
    bootloader: Option<PathBuf>,
    /// Flash offset of the partition table, e.g. 0x8000
    #[arg(long, value_name = "OFFSET", value_parser = parse_offset)]
    partition_table_offset: Option<u32>,
    /// App partition the image is sized for [default: factory, else the first app partition]
    #[arg(long, value_name = "NAME")]
    target_app_partition: Option<String>,
}

fn parse_offset(s: &str) -> Result<u32, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("{s:?} is not a number (write 0x8000 or 32768)"))?;
    if !v.is_multiple_of(0x1000) {
        return Err(format!("{v:#x} is not aligned to 0x1000 (4 KiB)"));
    }
    Ok(v)
}

fn main() {
    // `cargo thinger-patch ARGS` runs `cargo-thinger-patch thinger-patch ARGS`.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "thinger-patch") {
        argv.remove(1);
    }
    let cli = Cli::parse_from(argv);
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => e.report(),
    };
    std::process::exit(code);
}

/// One profile's finished outputs, before anything is written.
struct Output {
    profile: Option<String>,
    image_path: PathBuf,
    elf_path: PathBuf,
    image: Vec<u8>,
    image_valid: bool,
    done: Personalized,
    warnings: Vec<String>,
}

fn run(cli: &Cli) -> CliResult {
    if cli
        .cargo
        .extra
        .iter()
        .any(|a| a.starts_with("--message-format"))
    {
        return Err(CliError::new(
            exit::USAGE,
            "--message-format is set by cargo thinger-patch; leave it out of the cargo arguments",
        ));
    }
    let mut personalize_args = cli.personalize.clone();
    if personalize_args.config.is_none()
        && let Some(m) = &cli.cargo.manifest_path
    {
        // The package's thinger-patch.toml, as if run from its folder.
        let dir = m
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        personalize_args.config = dir
            .ancestors()
            .map(|d| d.join(FILE_NAME))
            .find(|p| p.is_file());
    }

    // Everything that can fail without a build fails before it.
    let mut warnings = Vec::new();
    let config = personalize_args.load_config(&mut warnings)?;
    let settings = image_settings(&cli.image, config.as_ref())?;
    let mut requests = Vec::new();
    for profile in personalize_args.profile_runs() {
        let request = personalize_args.request(config.as_ref(), profile.as_deref())?;
        requests.push((profile, request));
    }

    let build = BuildRequest {
        release: cli.cargo.release,
        cargo_profile: cli.cargo.cargo_profile.clone(),
        package: cli.cargo.package.clone(),
        bin: cli.cargo.bin.clone(),
        target: cli.cargo.target.clone(),
        features: cli.cargo.features.clone(),
        all_features: cli.cargo.all_features,
        no_default_features: cli.cargo.no_default_features,
        manifest_path: cli.cargo.manifest_path.clone(),
        extra: cli.cargo.extra.clone(),
    };
    let built = build.run()?;
    let elf = fsio::read(&built.elf)?;
    let elf_label = built.elf.display().to_string();
    let out_dir = built
        .elf
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let triple = cli.cargo.target.clone().or_else(|| triple_of(&built));
    let from_elf = Firmware::parse(&elf)
        .map_err(|e| {
            CliError::new(
                exit::INVALID,
                format!(
                    "{elf_label}: {e}; build for the chip's target (--target, or build.target in .cargo/config.toml)"
                ),
            )
        })?
        .chip();
    let chip = image::resolve_chip(
        settings.chip.as_ref(),
        triple.as_deref(),
        from_elf,
        &elf_label,
    )?;

    let mut outputs = Vec::new();
    for (profile, request) in &requests {
        let what = profile
            .as_deref()
            .map_or(String::new(), |p| format!(" (profile {p})"));
        let done = personalize(&elf, request)
            .map_err(|e| CliError::new(exit::INVALID, format!("{elf_label}{what}: {e}")))?;
        let image = image::convert(&done.bytes, chip, &settings, &format!("{elf_label}{what}"))?;
        let report = Firmware::parse(&image)
            .map_err(|e| {
                CliError::new(
                    exit::INVALID,
                    format!("{elf_label}{what}: the converted image does not parse: {e}"),
                )
            })?
            .verify();
        if !report.valid {
            return Err(CliError::new(
                exit::INVALID,
                format!(
                    "{elf_label}{what}: the converted image does not verify; nothing was written"
                ),
            ));
        }
        let stem = match profile {
            Some(p) => format!("{}.{p}", built.bin),
            None => built.bin.clone(),
        };
        let mut w = thinger_patch_cli::messages::warnings(&done.warnings);
        w.extend(result_warnings(&done));
        outputs.push(Output {
            profile: profile.clone(),
            image_path: out_dir.join(format!("{stem}.bin")),
            elf_path: out_dir.join(format!("{stem}.elf")),
            image,
            image_valid: report.valid,
            done,
            warnings: w,
        });
    }
    for o in &outputs {
        let secret = o.done.holds_secrets();
        fsio::write_atomic(&o.elf_path, &o.done.bytes, secret)?;
        fsio::write_atomic(&o.image_path, &o.image, secret)?;
    }
    report(
        cli,
        &built,
        triple.as_deref(),
        chip,
        &settings,
        &warnings,
        &outputs,
    );
    Ok(exit::OK)
}

/// `<target-dir>/<triple>/<profile>/<bin>`: the triple, when it is one espflash knows.
fn triple_of(built: &Built) -> Option<String> {
    let name = built.elf.parent()?.parent()?.file_name()?.to_str()?;
    (!image::chips_for_triple(name).is_empty()).then(|| name.to_string())
}

/// Flags win over the `[build]` table; its paths are relative to the config file.
fn image_settings(args: &ImageArgs, config: Option<&LoadedConfig>) -> CliResult<ImageSettings> {
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
    let pick = |flag: &Option<String>,
                table: Option<&'static str>,
                parse: fn(&str) -> Result<&'static str, String>,
                name: &str|
     -> CliResult<Option<&'static str>> {
        match flag {
            Some(v) => parse(v)
                .map(Some)
                .map_err(|m| usage(format!("--{name}: {m}"))),
            None => Ok(table),
        }
    };
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

#[derive(Serialize)]
struct Manifest<'a> {
    package_manifest: String,
    bin: &'a str,
    cargo_elf: String,
    target: Option<&'a str>,
    chip: Chip,
    merged: bool,
    flash_mode: Option<&'a str>,
    flash_size: Option<&'a str>,
    flash_freq: Option<&'a str>,
    /// Every `compiler-artifact` of this build was fresh: nothing was compiled.
    fresh: bool,
    /// Warnings about the configuration (each result has its own as well).
    warnings: &'a [String],
    results: Vec<ResultEntry<'a>>,
}

#[derive(Serialize)]
struct ResultEntry<'a> {
    profile: Option<&'a str>,
    image: String,
    elf: String,
    format: &'static str,
    size: usize,
    sha256: String,
    valid: bool,
    slots: &'a [SlotOutcome],
    warnings: &'a [String],
}

/// A path relative to the current folder when it is inside it (stable across checkouts).
fn shown(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use thinger_patch_core::checksum;
    checksum::hex(&checksum::sha256(bytes))
}

fn report(
    cli: &Cli,
    built: &Built,
    triple: Option<&str>,
    chip: Chip,
    s: &ImageSettings,
    warnings: &[String],
    outputs: &[Output],
) {
    let kind = if s.merged { "merged" } else { "app-image" };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    for o in outputs {
        for w in &o.warnings {
            match &o.profile {
                Some(p) => eprintln!("warning: profile {p}: {w}"),
                None => eprintln!("warning: {w}"),
            }
        }
    }
    if cli.json {
        let manifest = Manifest {
            package_manifest: shown(&built.manifest_path),
            bin: &built.bin,
            cargo_elf: shown(&built.elf),
            target: triple,
            chip,
            merged: s.merged,
            flash_mode: s.flash_mode,
            flash_size: s.flash_size,
            flash_freq: s.flash_freq,
            fresh: built.fresh,
            warnings,
            results: outputs
                .iter()
                .map(|o| ResultEntry {
                    profile: o.profile.as_deref(),
                    image: shown(&o.image_path),
                    elf: shown(&o.elf_path),
                    format: kind,
                    size: o.image.len(),
                    sha256: sha256_hex(&o.image),
                    valid: o.image_valid,
                    slots: &o.done.slots,
                    warnings: &o.warnings,
                })
                .collect(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&manifest).expect("the manifest serialises")
        );
        return;
    }
    println!(
        "built {} ({}, {} compiler artifact(s){})",
        shown(&built.elf),
        triple.unwrap_or("host target"),
        built.artifacts,
        if built.fresh {
            ", all fresh: nothing compiled"
        } else {
            ""
        }
    );
    for o in outputs {
        let set = o.done.slots.iter().filter(|x| x.origin.is_some()).count();
        println!(
            "wrote {} ({kind}, {chip}, {} bytes, {set} of {} slot(s) set, verified valid)",
            shown(&o.image_path),
            o.image.len(),
            o.done.slots.len()
        );
        println!(
            "  and {} (the personalised ELF, for crash decoding)",
            shown(&o.elf_path)
        );
        for line in thinger_patch_cli::args::slot_lines(&o.done.slots) {
            println!("{line}");
        }
    }
}
