//! `ThingerSlot.h` with the firmware compilers: `xtensa-lx106-elf-gcc`/`g++` (ESP8266) and
//! `riscv64-unknown-elf-gcc`/`g++ -march=rv32imc -mabi=ilp32 --specs=picolibc.specs`
//! (ESP32-C3), and the host compilers for comparison. Each compiles tests/c/vectors.c and
//! tests/c/standard.c with `-c -Wall -Wextra -Werror` in C99, C17, C++11 and C++17 at `-Os` and
//! `-O2`; the object file must hold each record in its own `.rodata.thinger_slot.<ident>`
//! section (allocated, read-only, 4-byte aligned, file-backed) with exactly the bytes of the
//! spec / this crate. The ESP8266 RAM-copy buffers must exist for xtensa-lx106 only.
//!
//! A missing cross compiler skips its part with a message, except when `CI=true`, where it fails.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{
    SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS, SHT_PROGBITS, TempDir, c_dir, elf_sections,
    golden_vectors, header_dir, hex, run_ok, tool,
};
use thinger_slot::value_len;

struct Toolchain {
    label: &'static str,
    cc: String,
    cxx: String,
    flags: &'static [&'static str],
    /// Whether the header must select the ESP8266 copy-from-flash path.
    copies_from_flash: bool,
    /// Cross compilers are skipped when absent (outside CI); the host ones are required.
    optional: bool,
}

fn toolchains() -> Vec<Toolchain> {
    vec![
        Toolchain {
            label: "host",
            cc: tool("CC", "cc"),
            cxx: tool("CXX", "c++"),
            flags: &[],
            copies_from_flash: false,
            optional: false,
        },
        // Debian's xtensa-lx106 compiler has no C library: -ffreestanding makes GCC's own
        // <stdint.h> self-contained (the header needs only stddef/stdint/stdbool).
        Toolchain {
            label: "xtensa-lx106 (bare compiler)",
            cc: "xtensa-lx106-elf-gcc".into(),
            cxx: "xtensa-lx106-elf-g++".into(),
            flags: &["-ffreestanding"],
            copies_from_flash: true,
            optional: true,
        },
        Toolchain {
            label: "xtensa-lx106 (Arduino ESP8266 defines)",
            cc: "xtensa-lx106-elf-gcc".into(),
            cxx: "xtensa-lx106-elf-g++".into(),
            flags: &[
                "-ffreestanding",
                "-DESP8266",
                "-DARDUINO_ARCH_ESP8266",
                "-mlongcalls",
            ],
            copies_from_flash: true,
            optional: true,
        },
        Toolchain {
            label: "riscv32 (ESP32-C3)",
            cc: "riscv64-unknown-elf-gcc".into(),
            cxx: "riscv64-unknown-elf-g++".into(),
            flags: &["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"],
            copies_from_flash: false,
            optional: true,
        },
    ]
}

/// (ident, record) for every slot of a test source.
fn expected_records(source: &str) -> Vec<(String, Vec<u8>)> {
    match source {
        "vectors.c" => common::vector_slots()
            .into_iter()
            .map(|e| (e.ident.to_string(), e.record))
            .collect(),
        "standard.c" => common::standard_slots()
            .into_iter()
            .map(|(k, r)| (k.to_string(), r))
            .collect(),
        _ => unreachable!(),
    }
}

/// Size of the RAM-copy buffers the value accessors of `source` need on ESP8266.
fn ram_copy_bytes(source: &str) -> usize {
    match source {
        // vectors.c reads wifi_ssid, thinger_host, wifi_password, x, fw_version.
        "vectors.c" => [32, 64, 64, 1, 16].iter().map(|&c| value_len(c)).sum(),
        // standard.c reads all six.
        "standard.c" => [32, 64, 64, 32, 32, 64].iter().map(|&c| value_len(c)).sum(),
        _ => unreachable!(),
    }
}

fn check_object(object: &Path, source: &str, copies_from_flash: bool, label: &str) {
    let file = std::fs::read(object).unwrap();
    let sections = elf_sections(&file);
    let golden = golden_vectors();
    for (ident, record) in expected_records(source) {
        let name = format!(".rodata.thinger_slot.{ident}");
        let found: Vec<_> = sections.iter().filter(|s| s.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "{label}: sections named {name}: {:?}",
            sections.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        let s = found[0];
        assert_eq!(s.sh_type, SHT_PROGBITS, "{label}: {name} type");
        assert!(s.flags & SHF_ALLOC != 0, "{label}: {name} is not allocated");
        assert!(
            s.flags & (SHF_WRITE | SHF_EXECINSTR) == 0,
            "{label}: {name} is writable or executable"
        );
        assert!(
            s.addralign >= 4,
            "{label}: {name} aligned to {}",
            s.addralign
        );
        assert_eq!(hex(s.data(&file)), hex(&record), "{label}: bytes of {name}");
        let letter = match ident.as_str() {
            "wifi_ssid" => Some('A'),
            "thinger_host" => Some('B'),
            "x" => Some('D'),
            _ => None,
        };
        if let Some(letter) = letter {
            assert_eq!(
                hex(s.data(&file)),
                hex(&golden[&letter]),
                "{label}: {name} != vector {letter}"
            );
        }
    }
    let bss: usize = sections
        .iter()
        .filter(|s| s.sh_type == SHT_NOBITS && s.flags & SHF_ALLOC != 0)
        .map(|s| s.size)
        .sum();
    if copies_from_flash {
        assert!(
            bss >= ram_copy_bytes(source),
            "{label}: {bss} bytes of .bss, the ESP8266 RAM copies need {}",
            ram_copy_bytes(source)
        );
    } else {
        assert_eq!(bss, 0, "{label}: unexpected .bss (RAM-copy path selected?)");
    }
}

#[test]
fn header_compiles_cleanly_for_the_firmware_targets() {
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    let dir = TempDir::new("cross");
    let mut built = 0;
    for chain in toolchains() {
        let missing: Vec<&str> = [chain.cc.as_str(), chain.cxx.as_str()]
            .into_iter()
            .filter(|c| !common::have(c))
            .collect();
        if !missing.is_empty() {
            assert!(
                !ci && chain.optional,
                "{}: compiler(s) {missing:?} not found (CI=true requires them)",
                chain.label
            );
            // Written to the real stderr (not the captured one) so that the skip is visible.
            let _ = writeln!(
                std::io::stderr(),
                "cross: skipping {}: {missing:?} not found",
                chain.label
            );
            continue;
        }
        let languages = [
            (&chain.cc, "c", "-std=c99"),
            (&chain.cc, "c", "-std=gnu17"),
            (&chain.cxx, "c++", "-std=c++11"),
            (&chain.cxx, "c++", "-std=gnu++17"),
        ];
        for (compiler, lang, std) in languages {
            for opt in ["-Os", "-O2"] {
                for source in ["vectors.c", "standard.c"] {
                    let object = dir.path().join(format!(
                        "{}-{}-{}{}-{}.o",
                        built,
                        source.trim_end_matches(".c"),
                        std.trim_start_matches("-std="),
                        opt,
                        chain.label.split_whitespace().next().unwrap()
                    ));
                    let mut cmd = Command::new(compiler);
                    cmd.arg("-x")
                        .arg(lang)
                        .arg(std)
                        .args([
                            "-Wall",
                            "-Wextra",
                            "-Werror",
                            opt,
                            "-ffunction-sections",
                            "-fdata-sections",
                        ])
                        .args(chain.flags)
                        .arg("-I")
                        .arg(header_dir())
                        .arg("-c")
                        .arg(c_dir().join(source))
                        .arg("-o")
                        .arg(&object);
                    run_ok(&mut cmd);
                    let label = format!("{} {compiler} {std} {opt} {source}", chain.label);
                    check_object(&object, source, chain.copies_from_flash, &label);
                    built += 1;
                }
            }
        }
    }
    assert!(built > 0);
}
