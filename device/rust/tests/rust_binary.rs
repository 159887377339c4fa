//! This crate in an optimised program: tests/rust/probe.rs is built with `rustc` against this
//! crate's source at `-C opt-level=s` and at `-C opt-level=3 -C lto=fat`, then run, patched as
//! thinger-patch would patch it, and run again (see `common::check_vector_program`): the
//! records equal the golden vectors, the defaults exist only inside the records, the never-read
//! slot survives `--gc-sections`, and the program reads the patched values.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, check_vector_program, manifest_dir, run_ok, tool};

fn rustc(dir: &Path, codegen: &[&str], label: &str) -> std::path::PathBuf {
    let rustc = tool("RUSTC", "rustc");
    let out = dir.join(label);
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        Command::new(&rustc)
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "rlib",
                "--crate-name",
                "thinger_slot",
            ])
            .args(codegen)
            .arg(manifest_dir().join("src/lib.rs"))
            .arg("--out-dir")
            .arg(&out),
    );
    let exe = out.join("probe");
    run_ok(
        Command::new(&rustc)
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "bin",
                "--crate-name",
                "probe",
            ])
            .args(codegen)
            .arg("--extern")
            .arg(format!(
                "thinger_slot={}",
                out.join("libthinger_slot.rlib").display()
            ))
            .arg(manifest_dir().join("tests/rust/probe.rs"))
            .arg("-o")
            .arg(&exe),
    );
    exe
}

#[test]
fn optimised_rust_program_reads_patched_values() {
    let dir = TempDir::new("rust-probe");
    let builds: [(&str, &[&str]); 2] = [
        ("opt-s", &["-C", "opt-level=s"]),
        (
            "opt3-lto",
            &[
                "-C",
                "opt-level=3",
                "-C",
                "lto=fat",
                "-C",
                "codegen-units=1",
            ],
        ),
    ];
    for (label, codegen) in builds {
        let exe = rustc(dir.path(), codegen, label);
        check_vector_program(&exe, &format!("rustc {}", codegen.join(" ")), true);
    }
}
