//! Running `cargo build --message-format=json-render-diagnostics` and finding
//! the firmware ELF in its `compiler-artifact` messages.

use cargo_metadata::{Message, TargetKind};
use std::ffi::OsString;
use std::io::BufReader;
use std::path::PathBuf;
use thinger_patch_cli::exit::{self, CliError};

/// What to ask cargo for.
#[derive(Debug, Default)]
pub struct BuildRequest {
    pub release: bool,
    pub cargo_profile: Option<String>,
    pub package: Option<String>,
    pub bin: Option<String>,
    pub target: Option<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub manifest_path: Option<PathBuf>,
    /// After `--` on our command line: given to `cargo build` as they are.
    pub extra: Vec<String>,
}

/// The firmware cargo built.
#[derive(Debug)]
pub struct Built {
    /// The ELF cargo wrote (never modified).
    pub elf: PathBuf,
    /// The binary target's name.
    pub bin: String,
    /// The package's manifest.
    pub manifest_path: PathBuf,
    /// Every `compiler-artifact` message was `"fresh": true`: nothing was compiled.
    pub fresh: bool,
    /// How many `compiler-artifact` messages cargo sent.
    pub artifacts: usize,
}

impl BuildRequest {
    /// The arguments after `cargo`.
    pub fn cargo_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "build".into(),
            // JSON messages on stdout; rustc's diagnostics rendered by cargo on stderr.
            "--message-format=json-render-diagnostics".into(),
        ];
        if self.release {
            a.push("--release".into());
        }
        if let Some(p) = &self.cargo_profile {
            a.push("--profile".into());
            a.push(p.into());
        }
        if let Some(m) = &self.manifest_path {
            a.push("--manifest-path".into());
            a.push(m.into());
        }
        if let Some(p) = &self.package {
            a.push("--package".into());
            a.push(p.into());
        }
        if let Some(b) = &self.bin {
            a.push("--bin".into());
            a.push(b.into());
        }
        if let Some(t) = &self.target {
            a.push("--target".into());
            a.push(t.into());
        }
        for f in &self.features {
            a.push("--features".into());
            a.push(f.into());
        }
        if self.all_features {
            a.push("--all-features".into());
        }
        if self.no_default_features {
            a.push("--no-default-features".into());
        }
        a.extend(self.extra.iter().map(OsString::from));
        a
    }

    /// Runs cargo (`$CARGO`, which cargo sets for subcommands, else `cargo` on
    /// `PATH`); its stderr (progress, warnings, errors) goes straight to ours.
    pub fn run(&self) -> Result<Built, CliError> {
        let cargo = std::env::var_os("CARGO")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "cargo".into());
        let args = self.cargo_args();
        let shown = format!(
            "{} {}",
            PathBuf::from(&cargo).display(),
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let reader = duct::cmd(&cargo, &args)
            .stdin_null()
            .unchecked()
            .reader()
            .map_err(|e| CliError::new(exit::IO, format!("cannot run {shown}: {e}")))?;
        let mut artifacts = Vec::new();
        for message in Message::parse_stream(BufReader::new(&reader)) {
            let message = message.map_err(|e| {
                CliError::new(exit::IO, format!("reading the output of {shown}: {e}"))
            })?;
            match message {
                Message::CompilerArtifact(a) => artifacts.push(a),
                // Only with other message formats; keep them visible.
                Message::CompilerMessage(m) => {
                    if let Some(r) = &m.message.rendered {
                        eprint!("{r}");
                    }
                }
                // Anything that is not JSON (a build script printing to stdout, ...).
                Message::TextLine(line) if !line.trim().is_empty() => eprintln!("{line}"),
                _ => {}
            }
        }
        let status = reader
            .try_wait()
            .map_err(|e| CliError::new(exit::IO, format!("waiting for {shown}: {e}")))?
            .map(|o| o.status);
        match status {
            Some(s) if s.success() => {}
            Some(s) => {
                return Err(CliError::new(
                    exit::INVALID,
                    format!("cargo build failed ({s}); its messages are above. Command: {shown}"),
                ));
            }
            None => {
                return Err(CliError::new(
                    exit::IO,
                    format!("{shown} closed its output but did not exit"),
                ));
            }
        }
        let total = artifacts.len();
        let fresh = artifacts.iter().all(|a| a.fresh);
        let mut bins: Vec<_> = artifacts
            .into_iter()
            .filter(|a| a.target.kind.contains(&TargetKind::Bin))
            .filter_map(|a| a.executable.clone().map(|exe| (a, exe)))
            .filter(|(a, _)| self.bin.as_deref().is_none_or(|b| a.target.name == b))
            .collect();
        match bins.len() {
            1 => {
                let (a, exe) = bins.remove(0);
                Ok(Built {
                    elf: exe.into_std_path_buf(),
                    bin: a.target.name.clone(),
                    manifest_path: a.manifest_path.into_std_path_buf(),
                    fresh,
                    artifacts: total,
                })
            }
            0 => Err(CliError::new(
                exit::INVALID,
                match &self.bin {
                    Some(b) => format!(
                        "cargo built no binary named {b}; check --bin (the [[bin]] name in Cargo.toml)"
                    ),
                    None => "cargo built no binary: run it in the firmware's package folder, or name it with --package / --bin / --manifest-path".into(),
                },
            )),
            _ => Err(CliError::new(
                exit::USAGE,
                format!(
                    "cargo built {} binaries ({}); choose the firmware with --bin NAME",
                    bins.len(),
                    bins.iter()
                        .map(|(a, _)| a.target.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_in_order() {
        let r = BuildRequest {
            release: true,
            package: Some("fw".into()),
            bin: Some("app".into()),
            target: Some("riscv32imc-unknown-none-elf".into()),
            features: vec!["a,b".into()],
            extra: vec!["--locked".into()],
            ..Default::default()
        };
        let a: Vec<String> = r
            .cargo_args()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            a,
            [
                "build",
                "--message-format=json-render-diagnostics",
                "--release",
                "--package",
                "fw",
                "--bin",
                "app",
                "--target",
                "riscv32imc-unknown-none-elf",
                "--features",
                "a,b",
                "--locked"
            ]
        );
    }
}
