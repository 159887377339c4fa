//! What a run prints: the human report, or `--json` a manifest (secret values masked).
//! Written through the CLI's closed-pipe-safe output (`cargo thinger-patch | head` is fine).

use crate::cargo_build::Built;
use crate::{Cli, Output};
use serde::Serialize;
use std::path::Path;
use thinger_patch_cli::outln;
use thinger_patch_core::Chip;
use thinger_patch_core::personalize::SlotOutcome;
use thinger_patch_delivery::convert::ImageSettings;

#[derive(Serialize)]
struct Manifest<'a> {
    package_manifest: String,
    bin: &'a str,
    cargo_elf: String,
    target: Option<&'a str>,
    chip: Chip,
    merged: bool,
    flash_mode: Option<&'static str>,
    flash_size: Option<&'static str>,
    flash_freq: Option<&'static str>,
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
    /// The converted image's own verification (checksum, SHA-256): every written image
    /// passed it, or nothing was written.
    integrity: &'a thinger_patch_core::Report,
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

pub fn report(
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
            flash_mode: s.flash_mode.map(|m| m.name()),
            flash_size: s.flash_size.map(|m| m.name()),
            flash_freq: s.flash_freq.map(|m| m.name()),
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
                    integrity: &o.report,
                    slots: &o.done.slots,
                    warnings: &o.warnings,
                })
                .collect(),
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&manifest).expect("the manifest serialises")
        );
        return;
    }
    outln!(
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
        outln!(
            "wrote {} ({kind}, {chip}, {} bytes, {set} of {} slot(s) set, verified valid)",
            shown(&o.image_path),
            o.image.len(),
            o.done.slots.len()
        );
        outln!(
            "  and {} (the personalised ELF, for crash decoding)",
            shown(&o.elf_path)
        );
        for line in thinger_patch_cli::args::slot_lines(&o.done.slots) {
            outln!("{line}");
        }
    }
}
