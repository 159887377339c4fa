//! `flash --dry-run`: personalise, decide the route and the plan, and show what
//! would be written where. No serial port is opened and no esptool is needed;
//! an app image's place is decided by the device's partition table, which only
//! the device has, so the rule and the candidate partition are shown instead.

use super::FlashArgs;
use crate::args;
use crate::exit;
use crate::{CliResult, outln, print_warnings};
use serde::Serialize;
use thinger_patch_core::chip::Chip;
use thinger_patch_core::personalize::{Personalized, SlotOutcome};
use thinger_patch_core::placement::{self, Plan, Route};
use thinger_patch_core::{Firmware, checksum};

/// Where an app image would go: the device's table decides.
#[derive(Debug, Serialize)]
struct DeviceTable {
    /// Flash offset the table is read from (`--partition-table-offset`).
    read_at: u32,
    /// The candidate partition.
    target: &'static str,
    /// What is erased with it.
    erase: &'static str,
    /// Bytes written there.
    len: usize,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    file: String,
    profile: Option<&'a str>,
    dry_run: bool,
    chip: Chip,
    tool: &'static str,
    format: &'static str,
    size: usize,
    sha256: String,
    /// Known placements; empty when the device's partition table decides.
    writes: &'a [placement::Write],
    erases: &'a [placement::Erase],
    #[serde(skip_serializing_if = "Option::is_none")]
    device_table: Option<DeviceTable>,
    slots: &'a [SlotOutcome],
    warnings: Vec<String>,
}

const APP_TARGET: &str = "factory app partition, else ota_0";
const APP_ERASE: &str = "otadata partition, if the table has one";

/// Prints the dry run; `plan` is the plan when it needs no device table.
pub(super) fn report(
    args: &FlashArgs,
    profile: Option<&str>,
    done: &Personalized,
    fw: &Firmware<'_>,
    route: Route,
    plan: Option<&Plan>,
    warnings: Vec<String>,
) -> CliResult {
    let data = fw.data();
    let device_table = route.needs_table().then_some(DeviceTable {
        read_at: args.partition_table_offset,
        target: APP_TARGET,
        erase: APP_ERASE,
        len: data.len(),
    });
    let s = Summary {
        file: args.file.display().to_string(),
        profile,
        dry_run: true,
        chip: route.chip(),
        tool: match route {
            Route::Esp32 { .. } => "espflash",
            Route::Esp8266 => "esptool",
        },
        format: done.format,
        size: data.len(),
        sha256: checksum::hex(&checksum::sha256(data)),
        writes: plan.map_or(&[], |p| &p.writes[..]),
        erases: plan.map_or(&[], |p| &p.erases[..]),
        device_table,
        slots: &done.slots,
        warnings,
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summary serialises")
        );
    } else {
        print_human(&s);
    }
    print_warnings(&s.warnings);
    Ok(exit::OK)
}

fn print_human(s: &Summary<'_>) {
    let set = s.slots.iter().filter(|o| o.origin.is_some()).count();
    outln!(
        "would flash {} ({}, {} bytes, {} of {} slot(s) set) to an {} with {}",
        s.file,
        s.format,
        s.size,
        set,
        s.slots.len(),
        s.chip,
        s.tool
    );
    if let Some(t) = &s.device_table {
        outln!(
            "  write    {:>8} bytes  into the device's {}: an app image goes where the device's partition table says, and that table is read from flash {:#x} on the device when flashing",
            t.len,
            APP_TARGET,
            t.read_at
        );
        outln!("  erase    the device's {APP_ERASE}");
    }
    for w in s.writes {
        outln!(
            "  write    {:#08x}  {:>8} bytes  {}",
            w.offset,
            w.len,
            w.what
        );
    }
    for e in s.erases {
        outln!(
            "  erase    {:#08x}  {:>8} bytes  {}",
            e.offset,
            e.size,
            e.what
        );
    }
    outln!("  SHA-256  {}", s.sha256);
    for line in args::slot_lines(s.slots) {
        outln!("{line}");
    }
    outln!(
        "dry run: nothing written, no serial port opened{}",
        if s.tool == "esptool" {
            ", esptool not run"
        } else {
            ""
        }
    );
}
