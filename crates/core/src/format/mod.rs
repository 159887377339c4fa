//! Firmware file formats: detection and parsing into [`Layout`]s of file
//! offsets. One module per format; nothing here reads files or allocates
//! copies of the data (except gzip, which must decompress).

pub mod app_image;
pub mod elf;
pub mod gzip;
pub mod partition_table;
pub(crate) mod read;
pub mod signature;

use crate::chip::Chip;
use crate::error::{Error, Result};
use app_image::{AppImage, HeaderKind, Segment};
use elf::ElfLayout;
use partition_table::{Partition, PartitionTable};
use read::{Reader, u32_at};
use signature::Signature;

/// The structure of a firmware file, as offsets into its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// An ELF executable: its allocated sections.
    Elf(ElfLayout),
    /// One `0xE9` image (an app, a bootloader, an ESP8266 v1/v3 image).
    App(TopImage),
    /// ESP8266 v2 image (`0xEA`, SDK boot.bin / rboot).
    Esp8266V2(V2Image),
    /// Arduino ESP8266 full image: eboot at 0x0, app at 0x1000.
    Arduino(ArduinoImage),
    /// Merged full-flash image: file offset = flash address.
    Merged(MergedImage),
}

/// A standalone image and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopImage {
    /// The image.
    pub image: AppImage,
    /// A signature after it.
    pub signature: Option<Signature>,
    /// Bytes after the image (and signature) that are neither 0x00 nor 0xFF padding.
    pub trailing: usize,
}

/// An ESP8266 v2 image (`0xEA`): an irom segment, then a v1 image of the RAM segments, then a CRC-32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Image {
    /// SPI flash mode from the first header.
    pub flash_mode: u8,
    /// Flash size (high nibble) and frequency (low nibble).
    pub flash_size_freq: u8,
    /// Entry address.
    pub entry: u32,
    /// The flash-mapped irom segment (outside the XOR checksum). Its header holds
    /// no load address; see [`V2Image::IROM_ADDR`].
    pub irom: Segment,
    /// The `0xE9` image of the RAM segments that follows (checksum at a
    /// file-aligned position).
    pub image: AppImage,
    /// File offset of the CRC-32 word.
    pub crc_offset: usize,
}

impl V2Image {
    /// Where the irom segment is mapped when the image sits at flash 0x1000
    /// (user1), as NONOS SDK and rboot link it: 0x40200000 + 0x1000 + 16-byte headers.
    pub const IROM_ADDR: u32 = 0x4020_1010;
}

/// Which Arduino core wrote the `{u32 length, u32 crc}` trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ArduinoTrailer {
    /// Core 2.7.x: at file offset 0xFF8 (end of eboot's padding).
    Core27,
    /// Core 3.x: at 0x1010, the first 8 bytes of `.irom0.text`; the app checksum
    /// is computed with those bytes zeroed.
    Core3,
}

impl ArduinoTrailer {
    /// File offset of the `{length, crc}` pair.
    pub fn offset(self) -> usize {
        match self {
            ArduinoTrailer::Core27 => 0xFF8,
            ArduinoTrailer::Core3 => 0x1010,
        }
    }
}

/// An Arduino ESP8266 full image: eboot at 0x0, the app at 0x1000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArduinoImage {
    /// The eboot bootloader (a v1 image at 0x0).
    pub eboot: AppImage,
    /// The app at 0x1000, or why it is not there.
    pub app: ArduinoApp,
    /// `None` when there is no trailer, or no app.
    pub trailer: Option<ArduinoTrailer>,
    /// An Arduino signed-OTA signature at the end.
    pub signature: Option<Signature>,
}

/// The app of an Arduino ESP8266 full image: an image, or why there is none.
///
/// eboot checks nothing of the app and esptool checks only eboot, so a file
/// whose app was erased, overwritten or cut off still looks fine to both; it is
/// kept as an Arduino image so that `verify` can say what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArduinoApp {
    /// The app parses.
    Image(AppImage),
    /// Nothing parses as an image at 0x1000; the reason names what was found.
    Missing {
        /// Why not (bad magic, erased, cut off, ...).
        reason: String,
    },
}

impl ArduinoApp {
    /// The app image, when it parses.
    pub fn image(&self) -> Option<&AppImage> {
        match self {
            ArduinoApp::Image(img) => Some(img),
            ArduinoApp::Missing { .. } => None,
        }
    }
}

/// Offset of the app in an Arduino ESP8266 full image.
pub const ARDUINO_APP_OFFSET: usize = 0x1000;

/// The padding byte of the Arduino core's `elf2bin.py` between eboot and 0x1000.
pub const ARDUINO_EBOOT_PAD: u8 = 0xAA;

/// A merged full-flash image: file offset = flash address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedImage {
    /// The chip its bootloader names.
    pub chip: Option<Chip>,
    /// The second-stage bootloader.
    pub bootloader: Option<AppImage>,
    /// The partition table.
    pub table: Option<PartitionTable>,
    /// Every app partition holding an image.
    pub apps: Vec<MergedApp>,
    /// App partitions inside the file that hold no image (blank or foreign data).
    pub empty_apps: Vec<Partition>,
}

/// An app inside a merged image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedApp {
    /// The table entry, or `None` in a merged file without a table.
    pub partition: Option<Partition>,
    /// The image.
    pub image: AppImage,
    /// A signature after it.
    pub signature: Option<Signature>,
}

impl MergedApp {
    /// `factory`, `ota_0 (app0)`, ...: its partition's role and label.
    pub fn role(&self) -> String {
        match &self.partition {
            Some(p) => format!("{} ({})", p.app_role(), p.label),
            None => format!("app@{:#x}", self.image.offset),
        }
    }
}

impl Layout {
    /// Detects and parses the format of `data` (already decompressed).
    pub fn parse(data: &[u8]) -> Result<Layout> {
        Self::parse_with(data, false)
    }

    /// Like [`Layout::parse`]; `allow_host_elf` also accepts host-program ELFs.
    pub fn parse_with(data: &[u8], allow_host_elf: bool) -> Result<Layout> {
        match data.first() {
            None => Err(Error::Empty),
            Some(_) if elf::is_elf(data) => {
                ElfLayout::parse_with(data, allow_host_elf).map(Layout::Elf)
            }
            Some(0xEA) => parse_v2(data).map(Layout::Esp8266V2),
            Some(&app_image::MAGIC) => parse_e9_at_zero(data),
            Some(0xFF) => parse_merged(data, None)?
                .map(Layout::Merged)
                .ok_or_else(|| unknown(data, 0)),
            Some(_) if looks_encrypted(data) => Err(Error::Encrypted { offset: 0 }),
            Some(_) => Err(unknown(data, 0)),
        }
    }
}

fn unknown(data: &[u8], offset: usize) -> Error {
    Error::UnknownFormat {
        offset,
        head: crate::checksum::hex_head(&data[offset..], 8),
    }
}

fn parse_v2(data: &[u8]) -> Result<V2Image> {
    let r = Reader::new(data);
    r.need(0, 8, "ESP8266 v2 header")?;
    let mut irom = app_image::parse_segments(data, 0, 8, 1, false)?.remove(0);
    irom.addr = V2Image::IROM_ADDR;
    let second = irom.data_offset + irom.len;
    let magic = r.u8(second, "ESP8266 v2 second header")?;
    if magic != app_image::MAGIC {
        return Err(Error::BadMagic {
            what: "the RAM image of an ESP8266 v2 image",
            offset: second,
            found: magic,
            expected: app_image::MAGIC,
        });
    }
    r.need(second, 8, "ESP8266 v2 second header")?;
    let count = data[second + 1] as usize;
    if count > app_image::MAX_SEGMENTS {
        return Err(Error::TooManySegments {
            offset: second,
            count,
        });
    }
    let segments = app_image::parse_segments(data, second, second + 8, count, true)?;
    let end = segments
        .last()
        .map_or(second + 8, |s| s.data_offset + s.len);
    // esptool aligns the checksum to the file, not to the second header.
    let checksum_offset = end | 0xF;
    r.need(checksum_offset, 1, "image checksum")?;
    let crc_offset = checksum_offset + 1;
    r.need(crc_offset, 4, "ESP8266 v2 CRC-32")?;
    let image = AppImage {
        offset: second,
        header: HeaderKind::Esp8266V1,
        flash_mode: data[second + 2],
        flash_size_freq: data[second + 3],
        entry: u32_at(data, second + 4),
        chip_id: None,
        min_chip_rev: None,
        hash_appended: None,
        segments,
        checksum_offset,
        digest_offset: None,
        end: checksum_offset + 1,
    };
    Ok(V2Image {
        flash_mode: data[2],
        flash_size_freq: data[3],
        entry: u32_at(data, 4),
        irom,
        image,
        crc_offset,
    })
}

fn parse_e9_at_zero(data: &[u8]) -> Result<Layout> {
    let first = AppImage::parse(data, 0, None)?;
    if is_arduino_eboot(data, &first) {
        return Ok(Layout::Arduino(parse_arduino(data, first)));
    }
    if first.header == HeaderKind::Extended
        && let Some(merged) = parse_merged(data, Some(&first))?
    {
        return Ok(Layout::Merged(merged));
    }
    let esp8266 = first.chip() == Some(Chip::Esp8266);
    let signature = signature::detect(data, &first, data.len(), esp8266);
    let after = signature.as_ref().map_or(first.end, |s| match s {
        Signature::SecureBootV2 { offset, blocks, .. } => offset + blocks * 1216,
        Signature::SecureBootV1 { offset } => offset + 68,
        Signature::ArduinoSignedOta { .. } => data.len(),
    });
    let trailing = data[after.min(data.len())..]
        .iter()
        .filter(|&&b| b != 0xFF && b != 0x00)
        .count();
    Ok(Layout::App(TopImage {
        image: first,
        signature,
        trailing,
    }))
}

/// Whether `first`, the image at 0x0, is the eboot of an Arduino ESP8266 full
/// image, so that the file must hold the app at 0x1000.
///
/// The rule: an ESP8266 v1 image that ends at or before 0x1000 and is followed
/// by an image magic at 0x1000, or by the core's `0xAA` padding: every byte
/// from the image's end up to 0xFF8 (where core 2.7.x puts its CRC trailer) or
/// up to the end of a shorter file, at least one byte. No other tool pads with
/// 0xAA, so an eboot whose app was erased, overwritten or cut off (a lone 4 KiB
/// eboot) is still an Arduino image, reported with its app missing, where
/// esptool sees a valid image. A boot loader as a converter writes it (eboot or
/// the SDK's `boot_v1.x.bin`: no padding) stays a plain image of its own.
fn is_arduino_eboot(data: &[u8], first: &AppImage) -> bool {
    if first.header != HeaderKind::Esp8266V1 || first.end > ARDUINO_APP_OFFSET {
        return false;
    }
    if data.get(ARDUINO_APP_OFFSET) == Some(&app_image::MAGIC) {
        return true;
    }
    let pad_end = data.len().min(ArduinoTrailer::Core27.offset());
    let pad = data.get(first.end..pad_end).unwrap_or_default();
    !pad.is_empty() && pad.iter().all(|&b| b == ARDUINO_EBOOT_PAD)
}

/// Where eboot runs: the top 4 KiB of the ESP8266's IRAM, where no app's code is.
const EBOOT_IRAM: std::ops::Range<u32> = 0x4010_F000..0x4011_0000;

/// Whether code entered at `entry` and loaded at `addrs` is the Arduino core's
/// eboot: the entry and every IRAM address in eboot's 4 KiB.
pub fn looks_like_eboot(entry: u32, mut addrs: impl Iterator<Item = u32>) -> bool {
    EBOOT_IRAM.contains(&entry)
        && addrs.all(|a| !(0x4010_0000..0x4011_0000).contains(&a) || EBOOT_IRAM.contains(&a))
}

/// Whether `img`, a plain image, is the Arduino core's eboot on its own (no app).
pub fn is_lone_eboot(img: &AppImage) -> bool {
    img.header == HeaderKind::Esp8266V1
        && looks_like_eboot(img.entry, img.segments.iter().map(|s| s.addr))
}

fn parse_arduino(data: &[u8], eboot: AppImage) -> ArduinoImage {
    let app = match AppImage::parse(data, ARDUINO_APP_OFFSET, Some(HeaderKind::Esp8266V1)) {
        Ok(app) => app,
        Err(e) => {
            return ArduinoImage {
                eboot,
                app: ArduinoApp::Missing {
                    reason: missing_app_reason(data, e),
                },
                trailer: None,
                signature: None,
            };
        }
    };
    let trailer_at = |t: ArduinoTrailer| {
        let o = t.offset();
        data.len() >= o + 8 && u32_at(data, o) as usize == data.len()
    };
    let trailer = [ArduinoTrailer::Core3, ArduinoTrailer::Core27]
        .into_iter()
        .find(|&t| trailer_at(t));
    let signature = signature::detect(data, &app, data.len(), true);
    ArduinoImage {
        eboot,
        app: ArduinoApp::Image(app),
        trailer,
        signature,
    }
}

/// Why no app parses at 0x1000, in words a user can act on.
fn missing_app_reason(data: &[u8], e: Error) -> String {
    let at = ARDUINO_APP_OFFSET;
    if data.len() <= at {
        return format!(
            "the file ends at {:#x}, before it (only eboot is here: a cut download, or the boot loader alone)",
            data.len()
        );
    }
    let rest = &data[at..];
    if let Error::BadMagic { found, .. } = e {
        let what = if rest.iter().all(|&b| b == 0xFF) {
            ", the rest of the file is erased flash (0xFF)".to_string()
        } else if rest.iter().all(|&b| b == 0x00) {
            ", the rest of the file is zeros".to_string()
        } else if rest.iter().all(|&b| b == ARDUINO_EBOOT_PAD) {
            ", the rest of the file is padding (0xAA)".to_string()
        } else {
            String::new()
        };
        return format!(
            "no image magic at {at:#x} (found {found:#04x}, expected {:#04x}){what}",
            app_image::MAGIC
        );
    }
    e.to_string()
}

/// Parses a merged image, or returns `None` when `data` is not one (a single
/// image followed by nothing that looks like a table or an app).
fn parse_merged(data: &[u8], first: Option<&AppImage>) -> Result<Option<MergedImage>> {
    // The bootloader sits at 0x0, 0x1000 or 0x2000 depending on the chip.
    let bootloader = match first {
        Some(img) => Some(img.clone()),
        None => {
            let at = [0x1000usize, 0x2000].into_iter().find(|&o| {
                data.get(o) == Some(&app_image::MAGIC) && data[..o].iter().all(|&b| b == 0xFF)
            });
            match at {
                Some(o) => Some(AppImage::parse(data, o, Some(HeaderKind::Extended))?),
                None => None,
            }
        }
    };
    let chip = bootloader.as_ref().and_then(AppImage::chip);
    let search_from = bootloader
        .as_ref()
        .map_or(0x1000, |b| b.end.next_multiple_of(0x1000));
    let table_offset = if PartitionTable::is_at(data, partition_table::DEFAULT_OFFSET)
        && search_from <= partition_table::DEFAULT_OFFSET
    {
        Some(partition_table::DEFAULT_OFFSET)
    } else {
        (search_from..data.len())
            .step_by(0x1000)
            .find(|&o| PartitionTable::is_at(data, o))
    };
    let table = table_offset
        .map(|o| PartitionTable::parse(data, o))
        .transpose()?;
    let mut apps = Vec::new();
    let mut empty_apps = Vec::new();
    match &table {
        Some(t) => {
            for p in t.apps() {
                let start = p.offset as usize;
                if start >= data.len() {
                    continue;
                }
                let limit = (p.end() as usize).min(data.len());
                if data[start] != app_image::MAGIC {
                    empty_apps.push(p.clone());
                    continue;
                }
                let image = AppImage::parse(&data[..limit], start, Some(HeaderKind::Extended))?;
                let signature = signature::detect(data, &image, limit, false);
                apps.push(MergedApp {
                    partition: Some(p.clone()),
                    image,
                    signature,
                });
            }
        }
        None => {
            let from = bootloader
                .as_ref()
                .map_or(0x10000, |b| b.end.next_multiple_of(0x10000));
            let mut o = from;
            while o < data.len() {
                if data[o] == app_image::MAGIC {
                    let image = AppImage::parse(data, o, Some(HeaderKind::Extended))?;
                    let next = image.end.next_multiple_of(0x10000);
                    let limit = (o + 0x10000..data.len())
                        .step_by(0x10000)
                        .find(|&n| n >= image.end && data[n] == app_image::MAGIC)
                        .unwrap_or(data.len());
                    let signature = signature::detect(data, &image, limit, false);
                    apps.push(MergedApp {
                        partition: None,
                        image,
                        signature,
                    });
                    o = next;
                } else {
                    o += 0x10000;
                }
            }
        }
    }
    if table.is_none() && apps.is_empty() {
        return Ok(None);
    }
    Ok(Some(MergedImage {
        chip,
        bootloader,
        table,
        apps,
        empty_apps,
    }))
}

/// Encrypted flash data is indistinguishable from random bytes: a first block
/// using nearly every byte value about equally often.
fn looks_encrypted(data: &[u8]) -> bool {
    let block = &data[..data.len().min(4096)];
    if block.len() < 256 {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in block {
        counts[b as usize] += 1;
    }
    let n = block.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy > 7.0
}
