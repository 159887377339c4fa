//! `thinger-patch patch`: personalise a file (ELF in, ELF out; image in,
//! re-sealed and verified image out).

use super::thinger::provision::{PropertyArgs, ProvisionArgs, Provisioning};
use crate::args::{
    PersonalizeArgs, personalize_for, personalize_request, result_warnings, slot_lines,
};
use crate::exit::{self, CliError};
use crate::outln;
use crate::{CliResult, fsio, print_warnings};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use thinger_patch_core::personalize::Personalized;

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Firmware to personalise: ELF, app image, merged image, Arduino ESP8266 image, .bin.gz; - for standard input
    pub file: PathBuf,
    #[command(flatten)]
    pub personalize: PersonalizeArgs,
    /// Output file [default: <stem>.<profile><extensions> beside the input]
    #[arg(short, long, value_name = "OUT", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,
    /// Replace the input file (atomically)
    #[arg(long)]
    pub in_place: bool,
    /// Check and report everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON summary (secret values masked)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub thinger: ProvisionArgs,
}

#[derive(Serialize)]
struct RunSummary<'a> {
    profile: Option<&'a str>,
    output: Option<String>,
    written: bool,
    format: &'static str,
    chip: Option<thinger_patch_core::Chip>,
    size: usize,
    /// SHA-256 of the bytes written (or, with --dry-run, that would be written).
    sha256: String,
    valid: bool,
    slots: &'a [thinger_patch_core::personalize::SlotOutcome],
    warnings: Vec<String>,
}

pub fn run(args: &PatchArgs) -> CliResult {
    let runs = args.personalize.profile_runs();
    if runs.len() > 1 && (args.output.is_some() || args.in_place) {
        return Err(CliError::new(
            exit::USAGE,
            "-o and --in-place take one --profile; leave them out to write <stem>.<profile><extensions> for each profile",
        ));
    }
    if runs == [None] && args.output.is_none() && !args.in_place && !args.dry_run {
        return Err(CliError::new(
            exit::USAGE,
            "without --profile, name the output with -o OUT (or use --in-place or --dry-run)",
        ));
    }
    // Output names first: a usage mistake is reported before any value is resolved.
    let outputs = runs
        .iter()
        .map(|p| output_path(args, p.as_deref()))
        .collect::<CliResult<Vec<_>>>()?;
    let input = fsio::read(&args.file)?;
    for out in outputs.iter().flatten() {
        check_compression(&args.file, &input, out)?;
    }
    let mut warnings = Vec::new();
    let config = args.personalize.load_config(&mut warnings)?;
    let mut results = Vec::new();
    let mut device = None;
    if args.thinger.thinger_device.is_some() {
        // One device per run: its identity goes into one output.
        let ([profile], [out]) = (&runs[..], &outputs[..]) else {
            return Err(CliError::new(
                exit::USAGE,
                "--thinger-device makes one device: give at most one --profile",
            ));
        };
        let mut request = args
            .personalize
            .request(config.as_ref(), profile.as_deref())?;
        let p =
            Provisioning::prepare(&args.thinger, &args.file, &input, &request, config.as_ref())?
                .expect("--thinger-device given");
        p.apply(&mut request);
        let done = personalize_request(&args.file, &input, &request, profile.as_deref())?;
        results.push((profile.as_deref(), out.clone(), done));
        device = Some(p);
    }
    // Everything is checked before anything is written.
    for (profile, out) in runs.iter().zip(outputs).filter(|_| device.is_none()) {
        let done = personalize_for(
            &args.personalize,
            &args.file,
            &input,
            config.as_ref(),
            profile.as_deref(),
        )?;
        results.push((profile.as_deref(), out, done));
    }
    if let (true, Some(p)) = (args.dry_run, &device) {
        eprintln!("{}", p.plan_line());
    }
    // All outputs or none: stage every file, then rename them into place.
    if !args.dry_run {
        let staged = results
            .iter()
            .filter_map(|(_, out, done)| out.as_ref().map(|o| (o, done)))
            .map(|(o, done)| {
                let mode = if args.in_place {
                    fsio::OutputMode::in_place(&args.file, done.holds_secrets())
                } else {
                    fsio::OutputMode::for_input(&args.file, done.holds_secrets())
                };
                fsio::stage(o, &done.bytes, mode)
            })
            .collect::<CliResult<Vec<_>>>()?;
        // The device is made on the account only once its firmware is ready to be renamed in.
        if let Some(p) = &mut device {
            p.register()?;
        }
        let committed = fsio::commit_all(staged);
        if let Some(p) = &mut device {
            committed.map_err(|e| p.failed(e))?;
            p.finish(None, &PropertyArgs::default())?;
        } else {
            committed?;
        }
    }
    let mut summaries = Vec::new();
    for (profile, out, done) in &results {
        let mut w = warnings.clone();
        w.extend(crate::messages::warnings(&done.warnings));
        w.extend(result_warnings(done));
        summaries.push(summary(*profile, out.as_deref(), done, !args.dry_run, w));
    }
    if args.json {
        let mut doc = serde_json::json!({ "input": args.file.display().to_string(), "dry_run": args.dry_run, "results": summaries });
        if let (Some(p), false) = (&device, args.dry_run) {
            doc["thinger"] = serde_json::to_value(p.summary()).expect("summary serialises");
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("summary serialises")
        );
        for s in &summaries {
            print_warnings(&s.warnings);
        }
    } else {
        for s in &summaries {
            print_warnings(&s.warnings);
            print_human(s, args.dry_run);
        }
        for line in device.iter().flat_map(|p| p.lines()) {
            outln!("{line}");
        }
    }
    Ok(exit::OK)
}

fn summary<'a>(
    profile: Option<&'a str>,
    out: Option<&Path>,
    done: &'a Personalized,
    written: bool,
    warnings: Vec<String>,
) -> RunSummary<'a> {
    RunSummary {
        profile,
        output: out.map(|o| o.display().to_string()),
        written: written && out.is_some(),
        format: done.format,
        chip: done.chip,
        size: done.bytes.len(),
        sha256: thinger_patch_core::checksum::hex(&thinger_patch_core::checksum::sha256(
            &done.bytes,
        )),
        valid: done.report.valid,
        slots: &done.slots,
        warnings,
    }
}

fn print_human(s: &RunSummary, dry_run: bool) {
    let chip = s.chip.map_or("unknown chip".into(), |c| c.to_string());
    let verb = match (dry_run, &s.output) {
        (false, _) => "wrote",
        (true, Some(_)) => "would write",
        (true, None) => "would write no file, no output named:",
    };
    let set = s.slots.iter().filter(|o| o.origin.is_some()).count();
    outln!(
        "{verb} {}({}, {chip}, {} bytes, {set} of {} slot(s) set, verified valid)",
        s.output
            .as_deref()
            .map_or(String::new(), |o| format!("{o} ")),
        s.format,
        s.size,
        s.slots.len()
    );
    for line in slot_lines(s.slots) {
        outln!("{line}");
    }
}

/// `-o`, the input for `--in-place`, or `<stem>.<profile><extensions>` beside
/// it; `None` for a dry run that names no output.
fn output_path(args: &PatchArgs, profile: Option<&str>) -> CliResult<Option<PathBuf>> {
    let stdin = args.file == Path::new("-");
    if stdin && (args.in_place || (args.output.is_none() && profile.is_some())) {
        return Err(CliError::new(
            exit::USAGE,
            "the input is standard input (-): name the output with -o OUT",
        ));
    }
    if args.in_place {
        return Ok(Some(args.file.clone()));
    }
    let path = match (&args.output, profile) {
        (Some(o), _) => o.clone(),
        (None, Some(p)) => default_output(&args.file, p),
        (None, None) => return Ok(None),
    };
    if same_file(&path, &args.file) {
        return Err(CliError::new(
            exit::USAGE,
            format!(
                "{}: the output is the input; use --in-place to replace it",
                path.display()
            ),
        ));
    }
    // A device node, FIFO or folder is refused here, before any value is resolved.
    fsio::destination(&path)?;
    Ok(Some(path))
}

/// The output is written in the input's form (a `.bin.gz` stays compressed): refuse a name that
/// says otherwise rather than put gzip data in a `.bin` (or plain data in a `.gz`).
fn check_compression(input_path: &Path, input: &[u8], out: &Path) -> CliResult<()> {
    let gzip_in = thinger_patch_core::format::gzip::is_gzip(input);
    let gz_name = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    match (gzip_in, gz_name) {
        (true, false) => Err(CliError::new(
            exit::USAGE,
            format!(
                "{}: the input {} is gzip-compressed and the output is written compressed too, but its name does not end in .gz; name it {}.gz",
                out.display(),
                input_path.display(),
                out.display()
            ),
        )),
        (false, true) => Err(CliError::new(
            exit::USAGE,
            format!(
                "{}: the name ends in .gz, but the input {} is not compressed and neither is the output; drop the .gz",
                out.display(),
                input_path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// `fw.bin.gz` + `kitchen` → `fw.kitchen.bin.gz`; `fw` → `fw.kitchen`.
pub fn default_output(input: &Path, profile: &str) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot is part of the stem (hidden files), not an extension.
    let split = name
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '.')
        .map(|(i, _)| i);
    let new = match split {
        Some(i) => format!("{}.{profile}{}", &name[..i], &name[i..]),
        None => format!("{name}.{profile}"),
    };
    input.with_file_name(new)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(
            default_output(Path::new("d/fw.bin.gz"), "k"),
            Path::new("d/fw.k.bin.gz")
        );
        assert_eq!(default_output(Path::new("fw"), "k"), Path::new("fw.k"));
        assert_eq!(
            default_output(Path::new("firmware.elf"), "garage"),
            Path::new("firmware.garage.elf")
        );
        assert_eq!(default_output(Path::new(".fw"), "k"), Path::new(".fw.k"));
    }
}
