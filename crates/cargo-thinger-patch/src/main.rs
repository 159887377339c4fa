//! `cargo thinger-patch`: build ESP32-family Rust firmware once with cargo,
//! then write one personalised, flashable image per credential profile.
//!
//! This crate only parses arguments, runs cargo and converts ELFs to images;
//! every value goes through thinger-patch's `PersonalizeArgs` and
//! `personalize()`, exactly as in `thinger-patch patch`.

mod cargo_build;
mod report;
mod settings;

use cargo_build::{BuildRequest, Built};
use clap::{Args, Parser};
use std::path::{Path, PathBuf};
use thinger_patch_cli::args::{PersonalizeArgs, result_warnings};
use thinger_patch_cli::exit::{self, CliError};
use thinger_patch_cli::fsio;
use thinger_patch_core::config::FILE_NAME;
use thinger_patch_core::personalize::Personalized;
use thinger_patch_core::{Firmware, Report, personalize};
use thinger_patch_delivery::convert;

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
pub(crate) struct Cli {
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
pub(crate) struct ImageArgs {
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
    #[arg(long, value_name = "OFFSET", value_parser = thinger_patch_core::placement::parse_offset)]
    partition_table_offset: Option<u32>,
    /// App partition the image is sized for [default: factory, else the first app partition]
    #[arg(long, value_name = "NAME")]
    target_app_partition: Option<String>,
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
pub(crate) struct Output {
    profile: Option<String>,
    image_path: PathBuf,
    elf_path: PathBuf,
    image: Vec<u8>,
    /// The converted image's verification.
    report: Report,
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
    let settings = settings::image_settings(&cli.image, config.as_ref())?;
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
    let chip = convert::resolve_chip(
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
        let image = convert::convert(&done.bytes, chip, &settings, &format!("{elf_label}{what}"))?;
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
            report,
            done,
            warnings: w,
        });
    }
    // Every profile's ELF and image, or none of them (as `patch` does).
    let mut staged = Vec::new();
    for o in &outputs {
        let mode = fsio::OutputMode {
            secret: o.done.holds_secrets(),
            ..fsio::OutputMode::default()
        };
        staged.push(fsio::stage(&o.elf_path, &o.done.bytes, mode)?);
        staged.push(fsio::stage(&o.image_path, &o.image, mode)?);
    }
    fsio::commit_all(staged)?;
    report::report(
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
    (!convert::chips_for_triple(name).is_empty()).then(|| name.to_string())
}
