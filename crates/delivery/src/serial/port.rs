//! Which serial port: the one named, else `ESPFLASH_PORT`, else the one likely
//! ESP serial port. Several candidates are for the user to pick (a front end
//! asks) and listed in an error otherwise: never silently "the first port".

use crate::error::{Error, Kind, Result};

/// USB vendor ids of the bridges found on ESP boards: Espressif's own USB
/// (USB-Serial-JTAG, USB-OTG), Silicon Labs CP210x, WCH CH340/CH9102, FTDI.
pub const ESP_VIDS: [u16; 4] = [0x303A, 0x10C4, 0x1A86, 0x0403];

/// The environment variable espflash reads for the port; honoured here too.
pub const PORT_ENV: &str = "ESPFLASH_PORT";

/// A serial port as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The port's name (`/dev/ttyUSB0`, `COM3`).
    pub name: String,
    /// `(vid, pid)` for USB ports.
    pub usb: Option<(u16, u16)>,
    /// Product or manufacturer text, for the list shown to the user.
    pub description: Option<String>,
    /// PCI or Bluetooth ports: never an ESP board.
    pub not_usb_serial: bool,
}

impl PortInfo {
    /// One line for lists: `/dev/ttyUSB0 (USB 10c4:ea60, CP2102 USB to UART Bridge)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((vid, pid)) = self.usb {
            parts.push(format!("USB {vid:04x}:{pid:04x}"));
        }
        if let Some(d) = &self.description {
            parts.push(d.clone());
        }
        if parts.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, parts.join(", "))
        }
    }
}

/// Whether `port` is likely an ESP board: a USB bridge with a known vendor id,
/// or (when the system gives no USB ids) a name of the kind those bridges get.
pub fn likely_esp(port: &PortInfo) -> bool {
    if port.not_usb_serial {
        return false;
    }
    match port.usb {
        Some((vid, _)) => ESP_VIDS.contains(&vid),
        None => likely_name(&port.name),
    }
}

/// `/dev/ttyUSB*`, `/dev/ttyACM*` (Linux), `/dev/cu.*` USB bridges (macOS), `COM<n>` (Windows).
pub fn likely_name(name: &str) -> bool {
    if let Some(rest) = name
        .strip_prefix("/dev/ttyUSB")
        .or_else(|| name.strip_prefix("/dev/ttyACM"))
    {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    }
    if let Some(rest) = name.strip_prefix("/dev/cu.") {
        let lower = rest.to_ascii_lowercase();
        return !(lower.starts_with("bluetooth")
            || lower.contains("debug-console")
            || lower.starts_with("wlan"));
    }
    if let Some(rest) = name
        .strip_prefix("COM")
        .or_else(|| name.strip_prefix(r"\\.\COM"))
    {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    }
    false
}

/// The decision, before any prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Use this port; the text says why (named, `ESPFLASH_PORT`, the only candidate).
    Use(String, &'static str),
    /// Ask the user to pick one of these.
    Ask(Vec<PortInfo>),
}

/// Chooses the port: `explicit` (`--port`) wins, then `env` (`ESPFLASH_PORT`), then
/// the only likely ESP port. Several candidates: [`Choice::Ask`] when `interactive`,
/// else an error listing them. None: an error listing every port seen.
pub fn choose(
    explicit: Option<&str>,
    env: Option<&str>,
    ports: &[PortInfo],
    interactive: bool,
) -> Result<Choice> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        return Ok(Choice::Use(p.to_string(), "--port"));
    }
    if let Some(p) = env.filter(|p| !p.trim().is_empty()) {
        return Ok(Choice::Use(p.trim().to_string(), PORT_ENV));
    }
    // On macOS every device shows up twice (tty.* and cu.*): keep the cu.* one.
    let mut candidates: Vec<PortInfo> = ports
        .iter()
        .filter(|p| likely_esp(p))
        .filter(|p| {
            !(p.name.starts_with("/dev/tty.")
                && ports
                    .iter()
                    .any(|q| q.name == p.name.replacen("/dev/tty.", "/dev/cu.", 1)))
        })
        .cloned()
        .collect();
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    candidates.dedup_by(|a, b| a.name == b.name);
    match candidates.len() {
        0 => {
            let seen = if ports.is_empty() {
                "no serial ports at all".to_string()
            } else {
                format!(
                    "only {}",
                    ports
                        .iter()
                        .map(PortInfo::describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Err(Error::device(format!("no ESP serial port found ({seen})")).with_help(
                format!(
                    "connect the board with a data-capable USB cable, or name the port (--port PORT or {PORT_ENV})"
                ),
            ))
        }
        1 => Ok(Choice::Use(
            candidates.remove(0).name,
            "the only ESP serial port found",
        )),
        _ if interactive => Ok(Choice::Ask(candidates)),
        _ => Err(Error::new(
            Kind::Usage,
            format!(
                "several ESP serial ports found; name one with --port PORT or {PORT_ENV}:\n{}",
                candidates
                    .iter()
                    .map(|p| format!("  {}", p.describe()))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        )),
    }
}

/// Parses the user's answer to the numbered list: `1`..=`n`.
pub fn parse_answer(answer: &str, n: usize) -> Option<usize> {
    let i: usize = answer.trim().parse().ok()?;
    (1..=n).contains(&i).then(|| i - 1)
}

/// The system's serial ports.
pub fn system_ports() -> Vec<PortInfo> {
    use serialport::SerialPortType;
    serialport::available_ports()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let (usb, description, not_usb_serial) = match &p.port_type {
                SerialPortType::UsbPort(u) => (
                    Some((u.vid, u.pid)),
                    u.product.clone().or_else(|| u.manufacturer.clone()),
                    false,
                ),
                SerialPortType::PciPort | SerialPortType::BluetoothPort => (None, None, true),
                SerialPortType::Unknown => (None, None, false),
            };
            PortInfo {
                name: p.port_name,
                usb,
                description,
                not_usb_serial,
            }
        })
        .collect()
}

/// The USB ids of `name`, when the system lists it as a USB port.
pub fn usb_ids(name: &str, ports: &[PortInfo]) -> Option<(u16, u16)> {
    ports.iter().find(|p| p.name == name).and_then(|p| p.usb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usb(name: &str, vid: u16, pid: u16) -> PortInfo {
        PortInfo {
            name: name.into(),
            usb: Some((vid, pid)),
            description: Some("bridge".into()),
            not_usb_serial: false,
        }
    }

    fn plain(name: &str) -> PortInfo {
        PortInfo {
            name: name.into(),
            usb: None,
            description: None,
            not_usb_serial: false,
        }
    }

    #[test]
    fn explicit_then_env_win() {
        let ports = [usb("/dev/ttyUSB0", 0x10c4, 0xea60)];
        assert_eq!(
            choose(Some("/dev/ttyX"), Some("/dev/ttyY"), &ports, false).unwrap(),
            Choice::Use("/dev/ttyX".into(), "--port")
        );
        assert_eq!(
            choose(None, Some("/dev/ttyY"), &ports, false).unwrap(),
            Choice::Use("/dev/ttyY".into(), PORT_ENV)
        );
        // An empty variable does not count.
        assert_eq!(
            choose(None, Some(" "), &ports, false).unwrap(),
            Choice::Use("/dev/ttyUSB0".into(), "the only ESP serial port found")
        );
    }

    #[test]
    fn only_likely_ports_count() {
        let ports = [
            usb("/dev/ttyUSB0", 0x067b, 0x2303), // Prolific: not an ESP bridge
            usb("/dev/ttyACM0", 0x303a, 0x1001), // Espressif USB-Serial-JTAG
            PortInfo {
                name: "/dev/ttyS0".into(),
                usb: None,
                description: None,
                not_usb_serial: true,
            },
            plain("/dev/ttyS1"),
        ];
        assert_eq!(
            choose(None, None, &ports, false).unwrap(),
            Choice::Use("/dev/ttyACM0".into(), "the only ESP serial port found")
        );
    }

    #[test]
    fn several_candidates_without_terminal_fail_with_the_list() {
        let ports = [
            usb("/dev/ttyUSB1", 0x1a86, 0x7523),
            usb("/dev/ttyUSB0", 0x10c4, 0xea60),
            plain("/dev/ttyS0"),
        ];
        let e = choose(None, None, &ports, false).unwrap_err();
        assert_eq!(e.kind(), Kind::Usage);
        assert!(
            e.to_string().contains("several ESP serial ports"),
            "{}",
            e.to_string()
        );
        assert!(
            e.to_string().contains("/dev/ttyUSB0 (USB 10c4:ea60"),
            "{}",
            e.to_string()
        );
        assert!(
            e.to_string().contains("/dev/ttyUSB1 (USB 1a86:7523"),
            "{}",
            e.to_string()
        );
        assert!(!e.to_string().contains("ttyS0"), "{}", e.to_string());
        assert!(e.to_string().contains("--port"), "{}", e.to_string());
        // On a terminal: ask, sorted by name.
        match choose(None, None, &ports, true).unwrap() {
            Choice::Ask(c) => {
                assert_eq!(c.len(), 2);
                assert_eq!(c[0].name, "/dev/ttyUSB0");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_candidate_lists_what_was_seen() {
        let e = choose(None, None, &[plain("/dev/ttyS0")], false).unwrap_err();
        assert_eq!(e.kind(), Kind::Device);
        assert!(
            e.to_string().contains("only /dev/ttyS0"),
            "{}",
            e.to_string()
        );
        let e = choose(None, None, &[], true).unwrap_err();
        assert!(
            e.to_string().contains("no serial ports at all"),
            "{}",
            e.to_string()
        );
    }

    #[test]
    fn names_by_platform() {
        for n in [
            "/dev/ttyUSB0",
            "/dev/ttyACM12",
            "/dev/cu.usbserial-0001",
            "/dev/cu.usbmodem1101",
            "/dev/cu.SLAB_USBtoUART",
            "/dev/cu.wchusbserial1410",
            "COM10",
            "COM3",
        ] {
            assert!(likely_name(n), "{n}");
        }
        for n in [
            "/dev/ttyS0",
            "/dev/ttyUSB",
            "/dev/cu.Bluetooth-Incoming-Port",
            "/dev/cu.debug-console",
            "/dev/pts/3",
            "COM",
            "COMX",
        ] {
            assert!(!likely_name(n), "{n}");
        }
    }

    #[test]
    fn macos_duplicates_keep_cu() {
        let ports = [
            plain("/dev/tty.usbserial-0001"),
            plain("/dev/cu.usbserial-0001"),
        ];
        // tty.* is not a likely name on its own; only cu.* remains.
        assert_eq!(
            choose(None, None, &ports, false).unwrap(),
            Choice::Use(
                "/dev/cu.usbserial-0001".into(),
                "the only ESP serial port found"
            )
        );
        let ports = [
            usb("/dev/tty.usbserial-0001", 0x10c4, 0xea60),
            usb("/dev/cu.usbserial-0001", 0x10c4, 0xea60),
        ];
        assert_eq!(
            choose(None, None, &ports, false).unwrap(),
            Choice::Use(
                "/dev/cu.usbserial-0001".into(),
                "the only ESP serial port found"
            )
        );
    }

    #[test]
    fn answers() {
        assert_eq!(parse_answer("2\n", 3), Some(1));
        assert_eq!(parse_answer(" 1 ", 1), Some(0));
        assert_eq!(parse_answer("0", 3), None);
        assert_eq!(parse_answer("4", 3), None);
        assert_eq!(parse_answer("x", 3), None);
    }
}
