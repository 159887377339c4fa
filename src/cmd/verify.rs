//! `thinger-patch verify`: one report per image inside each file.

use crate::exit::{self, CliError};
use crate::outln;
use crate::{CliResult, fsio};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use thinger_patch_core::Firmware;
use thinger_patch_core::report::{ChecksumStatus, ImageReport, Report};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Firmware files: ELF, app image, merged flash image, Arduino ESP8266 image, .bin.gz; - for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one stable JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// Also accept x86/ARM host-program ELFs (programs that use the slot header or crate on a PC)
    #[arg(long)]
    pub host_elf: bool,
}

#[derive(Serialize)]
struct FileResult {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    valid: bool,
}

pub fn run(args: &VerifyArgs) -> CliResult {
    let mut results = Vec::new();
    let mut worst = exit::OK;
    for path in &args.files {
        let r = match fsio::read(path) {
            Err(e) => {
                worst = worst.max(e.code);
                FileResult {
                    path: path.display().to_string(),
                    report: None,
                    error: Some(e.message),
                    valid: false,
                }
            }
            Ok(bytes) => match Firmware::parse_with(
                &bytes,
                thinger_patch_core::ParseOptions {
                    allow_host_elf: args.host_elf,
                    ..Default::default()
                },
            ) {
                Err(e) => {
                    worst = worst.max(exit::INVALID);
                    FileResult {
                        path: path.display().to_string(),
                        report: None,
                        error: Some(CliError::engine(path, &e).message),
                        valid: false,
                    }
                }
                Ok(fw) => {
                    let report = fw.verify();
                    if !report.valid {
                        worst = worst.max(exit::INVALID);
                    }
                    FileResult {
                        path: path.display().to_string(),
                        valid: report.valid,
                        report: Some(report),
                        error: None,
                    }
                }
            },
        };
        results.push(r);
    }
    if args.json {
        let doc = serde_json::json!({
            "valid": results.iter().all(|r| r.valid),
            "files": results,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("report serialises")
        );
    } else {
        for r in &results {
            match (&r.report, &r.error) {
                (Some(report), _) => print_report(&r.path, report),
                (None, Some(e)) => eprintln!("error: {e}"),
                (None, None) => {}
            }
        }
    }
    Ok(worst)
}

fn print_report(path: &str, r: &Report) {
    let verdict = if r.valid { "valid" } else { "INVALID" };
    let gz = r.compression.map_or(String::new(), |c| format!(" ({c})"));
    let chip = r.chip.map_or("unknown chip".to_string(), |c| c.to_string());
    outln!(
        "{path}: {}{gz}, {chip}, {} bytes: {verdict}",
        r.format,
        r.size
    );
    for img in &r.images {
        print_image(img);
    }
    if let Some(t) = &r.partition_table {
        let md5 = match &t.md5 {
            Some(m) if m.valid => "MD5 ok".to_string(),
            Some(m) => format!(
                "MD5 MISMATCH (stored {}, computed {})",
                m.stored, m.computed
            ),
            None => "no MD5 entry".to_string(),
        };
        outln!(
            "  partition table at {:#x}: {} entries, {md5}",
            t.offset,
            t.partitions.len()
        );
        for p in &t.partitions {
            outln!(
                "    {:<16} type {:#04x} subtype {:#04x} at {:#08x} size {:#x}",
                p.label,
                p.kind,
                p.subtype,
                p.offset,
                p.size
            );
        }
        for p in &t.problems {
            outln!("    problem ({}): {}", p.code, p.message);
        }
    }
    for n in &r.notes {
        outln!("  note: {n}");
    }
}

fn print_image(img: &ImageReport) {
    let chip = img
        .chip
        .map_or("unknown chip".to_string(), |c| c.to_string());
    let verdict = if img.valid { "valid" } else { "INVALID" };
    if img.kind == "missing" {
        outln!("  {} at {:#x}: missing: {verdict}", img.role, img.offset);
    } else {
        outln!(
            "  {} at {:#x}: {} for {chip}, entry {:#010x}, {} segment(s): {verdict}",
            img.role,
            img.offset,
            img.kind,
            img.entry,
            img.segments.len()
        );
    }
    for (i, s) in img.segments.iter().enumerate() {
        let name = s.name.as_deref().map_or(String::new(), |n| format!(" {n}"));
        outln!(
            "    segment {i:>2}: addr {:#010x} len {:#08x} at file offset {:#x}{name}",
            s.addr,
            s.len,
            s.offset
        );
    }
    if let Some(c) = &img.checksum {
        let status = match c.status {
            ChecksumStatus::Valid => "valid".to_string(),
            ChecksumStatus::ValidArduinoCore3 => {
                "valid (Arduino core 3.x convention: CRC trailer counted as zero)".to_string()
            }
            ChecksumStatus::Invalid => format!("INVALID (computed {:#04x})", c.computed),
        };
        outln!(
            "    checksum {:#04x} at {:#x}: {status}",
            c.stored,
            c.offset
        );
    }
    if let Some(h) = &img.sha256 {
        let status = if h.valid {
            "valid".to_string()
        } else {
            format!("INVALID (computed {})", h.computed)
        };
        outln!("    SHA-256 {} at {:#x}: {status}", h.stored, h.offset);
    }
    if let Some(c) = &img.crc {
        let status = if c.valid {
            "valid".to_string()
        } else {
            format!("INVALID (computed {:#010x})", c.computed)
        };
        outln!(
            "    CRC ({}) {:#010x} at {:#x}: {status}",
            c.kind,
            c.stored,
            c.offset
        );
    }
    if let Some(s) = &img.signature {
        outln!(
            "    signed: {} at {:#x} (cannot be patched)",
            s.describe(),
            s.offset()
        );
    }
    for p in &img.problems {
        outln!("    problem ({}): {}", p.code, p.message);
    }
}
