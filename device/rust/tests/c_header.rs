//! The C/C++ header `device/arduino/ThingerSlot/src/ThingerSlot.h`, built with the host
//! compilers (`cc`/`c++`, or `$CC`/`$CXX`) in C99, C11, C++11 and C++17, each at `-Os` and at
//! `-O2 -flto`, with `-Wall -Wextra -Werror -pedantic` and `--gc-sections`:
//!
//! * the records are byte-identical to the spec's golden vectors and to this crate's records;
//! * the defaults occur in the binary only inside the records;
//! * a slot the program never reads survives `--gc-sections`;
//! * patching the executable file as thinger-patch does changes what the program reads (nothing
//!   was constant-folded), also through the ESP8266 RAM-copy path, forced on the host;
//! * invalid declarations (default longer than the capacity, bad keys, ...) do not compile.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    TempDir, c_dir, check_vector_program, golden_vectors, header_dir, hex, output, parse_dump,
    run_ok, tool,
};

/// (compiler, language for -x, standard)
fn languages() -> Vec<(String, &'static str, &'static str)> {
    let cc = tool("CC", "cc");
    let cxx = tool("CXX", "c++");
    vec![
        (cc.clone(), "c", "-std=c99"),
        (cc, "c", "-std=c11"),
        (cxx.clone(), "c++", "-std=c++11"),
        (cxx, "c++", "-std=c++17"),
    ]
}

const OPTIMISATIONS: [&[&str]; 2] = [&["-Os"], &["-O2", "-flto"]];

const WARNINGS: [&str; 4] = ["-Wall", "-Wextra", "-Werror", "-pedantic"];

/// Compiles and links one of tests/c/*.c as a hosted test program.
fn build(
    dir: &Path,
    compiler: &str,
    lang: &str,
    std: &str,
    opt: &[&str],
    source: &str,
    extra: &[&str],
) -> PathBuf {
    let name = format!(
        "{}-{}-{}{}",
        source.trim_end_matches(".c"),
        std.trim_start_matches("-std="),
        opt.join("").replace('-', ""),
        if extra.is_empty() { "" } else { "-x" }
    );
    let exe = dir.join(name);
    let mut cmd = Command::new(compiler);
    cmd.arg("-x")
        .arg(lang)
        .arg(std)
        .args(WARNINGS)
        .args(opt)
        .args([
            "-ffunction-sections",
            "-fdata-sections",
            "-Wl,--gc-sections",
        ])
        .arg("-I")
        .arg(header_dir())
        .arg("-DTHINGER_SLOT_TEST_HOSTED")
        .args(extra)
        .arg(c_dir().join(source))
        .arg("-o")
        .arg(&exe);
    run_ok(&mut cmd);
    exe
}

#[test]
fn c_and_cxx_records_match_the_golden_vectors_and_read_patched_values() {
    let dir = TempDir::new("c-vectors");
    for (compiler, lang, std) in languages() {
        for opt in OPTIMISATIONS {
            let exe = build(dir.path(), &compiler, lang, std, opt, "vectors.c", &[]);
            let label = format!("{compiler} {std} {}", opt.join(" "));
            check_vector_program(&exe, &label, true);
        }
    }
}

/// The ESP8266 path (copy the value out of flash with word reads, return the RAM copy), forced on
/// the host by declaring the whole address space "flash".
#[test]
fn c_and_cxx_ram_copy_path() {
    let dir = TempDir::new("c-ramcopy");
    let force = [
        "-DTHINGER_SLOT_COPY_FROM_FLASH=1",
        "-DTHINGER_SLOT_FLASH_BEGIN=0u",
        "-DTHINGER_SLOT_FLASH_END=UINTPTR_MAX",
    ];
    let languages = languages();
    for ((compiler, lang, std), opt) in [
        (&languages[1], OPTIMISATIONS[1]),
        (&languages[3], OPTIMISATIONS[0]),
    ] {
        let exe = build(dir.path(), compiler, lang, std, opt, "vectors.c", &force);
        let label = format!("{compiler} {std} {} (RAM copy)", opt.join(" "));
        check_vector_program(&exe, &label, false);
    }
}

#[test]
fn c_standard_slots_match_the_rust_crate() {
    let dir = TempDir::new("c-standard");
    let golden = golden_vectors();
    let expected = common::standard_slots();
    for (compiler, lang, std) in languages() {
        for opt in OPTIMISATIONS {
            let exe = build(dir.path(), &compiler, lang, std, opt, "standard.c", &[]);
            let dump = parse_dump(&run_ok(&mut Command::new(&exe)));
            assert_eq!(dump.len(), expected.len());
            for (key, record) in &expected {
                assert_eq!(
                    hex(&dump[*key].record),
                    hex(record),
                    "{compiler} {std}: standard slot {key}"
                );
                assert!(!dump[*key].patched);
            }
            assert_eq!(hex(&dump["wifi_ssid"].record), hex(&golden[&'A']));
            assert_eq!(hex(&dump["thinger_host"].record), hex(&golden[&'B']));
            assert_eq!(dump["thinger_host"].value, "iot.thinger.io");
            common::assert_only_inside_records(
                &fs::read(&exe).unwrap(),
                "iot.thinger.io",
                &format!("{compiler} {std}"),
            );
        }
    }
}

/// Each declaration must be rejected by the compiler, with our message (C11, C++) or our
/// negative-array typedef name (C99) in the diagnostics; the control declarations compile.
#[test]
fn c_rejects_invalid_declarations_at_compile_time() {
    struct Case {
        decl: String,
        /// Text of the static assertion (C11/C++) ...
        message: &'static str,
        /// ... or name of the C99 fallback typedef.
        c99_name: &'static str,
        cxx_only: bool,
    }
    let case = |decl: &str, message, c99_name| Case {
        decl: decl.to_string(),
        message,
        c99_name,
        cxx_only: false,
    };
    let cases = [
        // 6 bytes fit the 8-byte value field of capacity 5, so only the capacity check can catch it.
        case(
            r#"THINGER_SLOT(too_long, 5, "abcdef", 0);"#,
            "slot too_long: default is longer than its capacity",
            "thinger_slot_error_default_longer_than_capacity_too_long",
        ),
        case(
            r#"THINGER_SLOT(way_too_long, 2, "abcdefghijklmnop", 0);"#,
            "slot way_too_long: default is longer than its capacity",
            "thinger_slot_error_default_longer_than_capacity_way_too_long",
        ),
        case(
            &format!(
                r#"THINGER_SLOT_NAMED(long_key, "{}", 8, "", 0);"#,
                "k".repeat(32)
            ),
            "slot long_key: key must be 1..31 bytes",
            "thinger_slot_error_key_must_be_1_to_31_bytes_long_key",
        ),
        case(
            r#"THINGER_SLOT_NAMED(empty_key, "", 8, "", 0);"#,
            "slot empty_key: key must be 1..31 bytes",
            "thinger_slot_error_key_must_be_1_to_31_bytes_empty_key",
        ),
        case(
            r#"THINGER_SLOT(no_room, 0, "", 0);"#,
            "slot no_room: capacity must be 1..4096",
            "thinger_slot_error_capacity_must_be_1_to_4096_no_room",
        ),
        case(
            r#"THINGER_SLOT(too_big, 4097, "", 0);"#,
            "slot too_big: capacity must be 1..4096",
            "thinger_slot_error_capacity_must_be_1_to_4096_too_big",
        ),
        case(
            r#"THINGER_SLOT(odd_flags, 8, "", 4);"#,
            "slot odd_flags: flags must be SECRET, REQUIRED or 0",
            "thinger_slot_error_unknown_flags_odd_flags",
        ),
        Case {
            decl: r#"THINGER_SLOT_NAMED(spaced, "a b", 8, "", 0);"#.to_string(),
            message: "slot spaced: key must match",
            c99_name: "",
            cxx_only: true,
        },
    ];
    let controls = [
        r#"THINGER_SLOT(fits, 6, "abcdef", 0);"#.to_string(),
        format!(
            r#"THINGER_SLOT_NAMED(key31, "{}", 4096, "", THINGER_SLOT_SECRET | THINGER_SLOT_REQUIRED);"#,
            "k".repeat(31)
        ),
        r#"THINGER_SLOT_NAMED(dotted, "a.b-c_9", 1, "z", 0);"#.to_string(),
    ];

    let dir = TempDir::new("c-reject");
    let compile = |compiler: &str, lang: &str, std: &str, decl: &str, n: usize| {
        let ext = if lang == "c" { "c" } else { "cpp" };
        let src = dir
            .path()
            .join(format!("case{n}-{}.{ext}", std.trim_start_matches("-std=")));
        fs::write(&src, format!("#include <ThingerSlot.h>\n{decl}\n")).unwrap();
        let mut cmd = Command::new(compiler);
        cmd.arg(std)
            .args(WARNINGS)
            .arg("-c")
            .arg("-I")
            .arg(header_dir())
            .arg(&src)
            .arg("-o")
            .arg(src.with_extension("o"));
        output(&mut cmd)
    };
    for (compiler, lang, std) in languages() {
        for (n, decl) in controls.iter().enumerate() {
            let out = compile(&compiler, lang, std, decl, 100 + n);
            assert!(
                out.status.success(),
                "{compiler} {std}: control {decl} does not compile:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (n, case) in cases.iter().enumerate() {
            if case.cxx_only && lang == "c" {
                continue;
            }
            let out = compile(&compiler, lang, std, &case.decl, n);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{compiler} {std}: {} compiled",
                case.decl
            );
            let ours = stderr.contains(case.message)
                || (!case.c99_name.is_empty() && stderr.contains(case.c99_name));
            assert!(
                ours,
                "{compiler} {std}: {} failed without our diagnostic:\n{stderr}",
                case.decl
            );
        }
    }
}
