//! Firmware updates through the cloud: the `$ota` device resources that
//! Thinger.io's `ThingerOTA` (Arduino library `src/ThingerOTA.h`) exposes, called
//! in the order Thinger's VS Code extension calls them
//! (`src/thinger-ota-instance.ts`): options, begin, write × N, end, reboot.
//!
//! [`plan`] is pure (compression, checksums, chunking); [`OtaHandle::send`] does the calls.

use std::io::Write;
use std::time::Duration;

use flate2::Compression as Level;
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{Error, escape_message};
use crate::http::{Body, Method, Request, Response, percent_encode};
use crate::ids::DeviceId;

/// Added to the device's own timeout for each call's wait.
const CALL_MARGIN: Duration = Duration::from_secs(15);

/// Reports progress in bytes on the wire.
pub trait Progress {
    /// The transfer starts; `total` bytes will be sent.
    fn started(&mut self, total: u64);
    /// `done` bytes acknowledged so far.
    fn advanced(&mut self, done: u64);
    /// The device accepted the image.
    fn finished(&mut self);
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn started(&mut self, _: u64) {}
    fn advanced(&mut self, _: u64) {}
    fn finished(&mut self) {}
}

/// Compression a device offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zlib stream (ESP32: inflated on the device with miniz).
    Zlib,
    /// gzip file (ESP8266 built with `ATOMIC_FS_UPDATE`: stored, inflated by eboot).
    Gzip,
}

impl Compression {
    /// The name in options and begin.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zlib => "zlib",
            Compression::Gzip => "gzip",
        }
    }
}

/// What `GET .../$ota/options` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaOptions {
    /// OTA enabled in the firmware.
    pub enabled: bool,
    /// Bytes per write call.
    pub block_size: usize,
    /// The device gives up after this many ms without progress.
    pub timeout_ms: u64,
    /// The firmware's `THINGER_OTA_VERSION` (empty when not set).
    pub version: String,
    /// Compression offered, if any (`zlib`, `gzip`; others are ignored).
    pub compression: Option<String>,
    /// Checksum asked for (`md5`).
    pub checksum: Option<String>,
    /// `espressif32`, `espressif8266`, ...
    pub platform: Option<String>,
}

/// Parses the options answer.
pub fn parse_options(device: &DeviceId, response: &Response) -> Result<OtaOptions, Error> {
    let err = |message: String| Error::Protocol {
        action: format!("read the OTA options of device {device}"),
        message,
    };
    let v = response.json().map_err(err)?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let block_size = v
        .get("block_size")
        .and_then(|b| b.as_u64())
        .filter(|&b| b > 0 && b <= 1 << 20)
        .ok_or_else(|| err("no valid block_size".into()))? as usize;
    Ok(OtaOptions {
        enabled: v.get("enabled").and_then(|e| e.as_bool()).unwrap_or(false),
        block_size,
        timeout_ms: v.get("timeout").and_then(|t| t.as_u64()).unwrap_or(30_000),
        version: s("version").unwrap_or_default(),
        compression: s("compression").filter(|c| !c.is_empty()),
        checksum: s("checksum"),
        platform: s("platform"),
    })
}

/// How to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaConfig {
    /// `firmware` in begin (the VS Code extension sends the build environment).
    pub firmware: String,
    /// The image's version; equal to the device's means "already up to date".
    pub version: Option<String>,
    /// Send even when the versions are equal.
    pub force: bool,
    /// Compress when the device offers it (a gzip-only device always gets gzip).
    pub compress: bool,
}

impl Default for OtaConfig {
    fn default() -> Self {
        OtaConfig {
            firmware: "default".into(),
            version: None,
            force: false,
            compress: true,
        }
    }
}

/// Everything computed before the first call.
#[derive(Debug, Clone, PartialEq)]
pub struct OtaPlan {
    /// The begin body.
    pub begin: Value,
    /// The bytes written (compressed or not).
    pub payload: Vec<u8>,
    /// Bytes per write.
    pub chunk_size: usize,
    /// Compression used.
    pub compression: Option<Compression>,
    /// The plain image's size.
    pub plain_size: usize,
    /// MD5 of the plain image, hex.
    pub plain_md5: String,
}

/// The plan, or why nothing needs sending.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Send this.
    Send(OtaPlan),
    /// The device already runs this version.
    UpToDate {
        /// The version.
        version: String,
    },
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Plans an update of `device` with `image` given its options (pure).
///
/// Checksums: `checksum` is the MD5 of the plain image and `compressed_checksum`
/// that of the compressed bytes, as the VS Code extension sends them — except
/// for gzip: an ESP8266 built with `ATOMIC_FS_UPDATE` hashes every byte it
/// receives (the gzip file) and compares with `checksum`, and its Updater checks
/// `compressed_checksum`, so both are the gzip file's MD5 there (sending the
/// plain MD5, as the extension does, fails its end check).
pub fn plan(
    device: &DeviceId,
    image: &[u8],
    options: &OtaOptions,
    config: &OtaConfig,
) -> Result<Planned, Error> {
    if !options.enabled {
        return Err(Error::OtaDisabled {
            device: device.to_string(),
        });
    }
    if image.is_empty() {
        return Err(Error::Invalid {
            what: format!("firmware for device {device}"),
            message: "the image is empty".into(),
        });
    }
    if let Some(v) = &config.version
        && !config.force
        && !v.is_empty()
        && *v == options.version
    {
        return Ok(Planned::UpToDate { version: v.clone() });
    }
    let offered = match options.compression.as_deref() {
        Some("zlib") => Some(Compression::Zlib),
        Some("gzip") => Some(Compression::Gzip),
        _ => None,
    };
    // gzip devices size their update by compressed_size: they need it.
    let compression = match offered {
        Some(Compression::Gzip) => Some(Compression::Gzip),
        other if config.compress => other,
        _ => None,
    };
    let plain_md5 = md5_hex(image);
    let mut begin = Map::new();
    begin.insert("firmware".into(), config.firmware.clone().into());
    begin.insert(
        "version".into(),
        config.version.clone().unwrap_or_default().into(),
    );
    begin.insert("size".into(), image.len().into());
    begin.insert("chunk_size".into(), options.block_size.into());
    let md5 = options.checksum.as_deref() == Some("md5");
    let payload = match compression {
        None => {
            if md5 {
                begin.insert("checksum".into(), plain_md5.clone().into());
            }
            image.to_vec()
        }
        Some(c) => {
            let compressed = compress(c, image);
            let compressed_md5 = md5_hex(&compressed);
            if md5 {
                let checksum = match c {
                    Compression::Zlib => plain_md5.clone(),
                    Compression::Gzip => compressed_md5.clone(),
                };
                begin.insert("checksum".into(), checksum.into());
            }
            begin.insert("compression".into(), c.as_str().into());
            begin.insert("compressed_size".into(), compressed.len().into());
            if md5 {
                begin.insert("compressed_checksum".into(), compressed_md5.into());
            }
            compressed
        }
    };
    Ok(Planned::Send(OtaPlan {
        begin: Value::Object(begin),
        payload,
        chunk_size: options.block_size,
        compression,
        plain_size: image.len(),
        plain_md5,
    }))
}

/// Compresses an image as the device expects it.
pub fn compress(c: Compression, image: &[u8]) -> Vec<u8> {
    let level = Level::best();
    match c {
        Compression::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(image).expect("in memory");
            e.finish().expect("in memory")
        }
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(image).expect("in memory");
            e.finish().expect("in memory")
        }
    }
}

/// Request builders (pure).
pub mod requests {
    use super::*;

    fn path(user: &str, device: &DeviceId, resource: &str) -> String {
        format!(
            "/v3/users/{}/devices/{}/resources/$ota/{resource}",
            percent_encode(user),
            percent_encode(device.as_str())
        )
    }

    fn request(
        method: Method,
        user: &str,
        device: &DeviceId,
        resource: &str,
        action: String,
    ) -> Request {
        Request::new(
            method,
            path(user, device, resource),
            "AccessDeviceResources",
            action,
            format!("device {device}"),
        )
    }

    /// `GET .../$ota/options`.
    pub fn options(user: &str, device: &DeviceId) -> Request {
        request(
            Method::Get,
            user,
            device,
            "options",
            format!("read the OTA options of device {device}"),
        )
    }

    /// `POST .../$ota/begin`.
    pub fn begin(user: &str, device: &DeviceId, plan: &OtaPlan) -> Request {
        request(
            Method::Post,
            user,
            device,
            "begin",
            format!("begin the update of device {device}"),
        )
        .with_body(Body::json(&plan.begin))
    }

    /// `POST .../$ota/write` with one chunk (`application/octet-stream`).
    pub fn write(user: &str, device: &DeviceId, chunk: &[u8]) -> Request {
        request(
            Method::Post,
            user,
            device,
            "write",
            format!("send a chunk to device {device}"),
        )
        .with_body(Body::Bytes(chunk.to_vec()))
    }

    /// `POST .../$ota/end`.
    pub fn end(user: &str, device: &DeviceId) -> Request {
        request(
            Method::Post,
            user,
            device,
            "end",
            format!("end the update of device {device}"),
        )
    }

    /// `POST .../$ota/reboot`.
    pub fn reboot(user: &str, device: &DeviceId) -> Request {
        request(
            Method::Post,
            user,
            device,
            "reboot",
            format!("reboot device {device}"),
        )
    }
}

/// A device's `{success, error?}` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// `success`.
    pub success: bool,
    /// `error`, escaped.
    pub error: Option<String>,
}

/// Parses a `{success, error?}` answer.
pub fn parse_ack(response: &Response) -> Result<Ack, String> {
    let v = response.json()?;
    Ok(Ack {
        success: v.get("success").and_then(|s| s.as_bool()).unwrap_or(false),
        error: v
            .get("error")
            .and_then(|e| e.as_str())
            .filter(|e| !e.is_empty())
            .map(escape_message),
    })
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtaOutcome {
    /// Sent, verified by the device, and the device asked to reboot.
    Updated,
    /// The device already runs this version.
    AlreadyUpToDate {
        /// The version.
        version: String,
    },
}

/// A report of one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaReport {
    /// What happened.
    pub outcome: OtaOutcome,
    /// The device's options.
    pub options: OtaOptions,
    /// Compression used.
    pub compression: Option<Compression>,
    /// The plain image's size.
    pub plain_size: usize,
    /// Bytes written to the device.
    pub sent_bytes: usize,
    /// Write calls.
    pub chunks: usize,
    /// MD5 of the plain image.
    pub plain_md5: String,
}

/// OTA of one device.
#[derive(Debug)]
pub struct OtaHandle<'a> {
    client: &'a Client,
    device: DeviceId,
    config: OtaConfig,
    wait: Option<Duration>,
}

impl Client {
    /// Firmware updates of a device through the cloud.
    pub fn ota(&self, device: &DeviceId) -> OtaHandle<'_> {
        OtaHandle {
            client: self,
            device: device.clone(),
            config: OtaConfig::default(),
            wait: None,
        }
    }
}

impl OtaHandle<'_> {
    /// Sends even when the device reports the same version.
    pub fn force(mut self, force: bool) -> Self {
        self.config.force = force;
        self
    }

    /// Compresses when the device offers it (default true).
    pub fn compress(mut self, compress: bool) -> Self {
        self.config.compress = compress;
        self
    }

    /// The `firmware` name in begin (default `default`).
    pub fn firmware_name(mut self, name: &str) -> Self {
        self.config.firmware = name.to_string();
        self
    }

    /// Bounds the wait for each call (default: the device's OTA timeout + 15 s).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// The device's OTA options (the device must be online).
    pub fn options(&self) -> Result<OtaOptions, Error> {
        let user = self.client.user()?;
        let wait = self.wait.unwrap_or(Duration::from_secs(30));
        let r = self.call(requests::options(&user, &self.device), wait, 0, 0)?;
        parse_options(&self.device, &r)
    }

    /// Updates the device with `image` (`version`: the image's version, compared
    /// with the device's).
    pub fn send(
        &self,
        image: &[u8],
        version: Option<&str>,
        progress: &mut dyn Progress,
    ) -> Result<OtaReport, Error> {
        let user = self.client.user()?;
        let options = self.options()?;
        let config = OtaConfig {
            version: version.map(str::to_string),
            ..self.config.clone()
        };
        let plan = match plan(&self.device, image, &options, &config)? {
            Planned::UpToDate { version } => {
                return Ok(OtaReport {
                    outcome: OtaOutcome::AlreadyUpToDate { version },
                    options,
                    compression: None,
                    plain_size: image.len(),
                    sent_bytes: 0,
                    chunks: 0,
                    plain_md5: md5_hex(image),
                });
            }
            Planned::Send(p) => p,
        };
        let wait = self
            .wait
            .unwrap_or(Duration::from_millis(options.timeout_ms) + CALL_MARGIN);
        let total = plan.payload.len() as u64;
        let device = self.device.to_string();

        let r = self.call(requests::begin(&user, &self.device, &plan), wait, 0, total)?;
        let ack = parse_ack(&r).map_err(|m| self.protocol("begin", m))?;
        if !ack.success {
            return Err(Error::OtaBegin {
                device,
                message: ack
                    .error
                    .unwrap_or_else(|| "no reason given (an update may already be running)".into()),
            });
        }

        progress.started(total);
        let mut done = 0u64;
        let mut chunks = 0;
        for chunk in plan.payload.chunks(plan.chunk_size) {
            let r = self.call(
                requests::write(&user, &self.device, chunk),
                wait,
                done,
                total,
            )?;
            let ack = parse_ack(&r).map_err(|m| self.protocol("write", m))?;
            if !ack.success {
                let message = ack.error.unwrap_or_else(|| "invalid firmware part".into());
                // The device's answer once it gave up waiting (ThingerOTA.h).
                if message.contains("no OTA update in progress") {
                    return Err(Error::OtaStalled {
                        device,
                        offset: done,
                        total,
                        detail: Some(format!(
                            "the device answered \"{message}\": it timed out and restarted"
                        )),
                    });
                }
                return Err(Error::OtaWrite {
                    device,
                    offset: done,
                    total,
                    message,
                });
            }
            done += chunk.len() as u64;
            chunks += 1;
            progress.advanced(done);
        }

        let r = self.call(requests::end(&user, &self.device), wait, done, total)?;
        let ack = parse_ack(&r).map_err(|m| self.protocol("end", m))?;
        if !ack.success {
            return Err(Error::OtaEnd {
                device,
                message: ack.error.unwrap_or_else(|| "bad image or checksum".into()),
            });
        }
        // The device reboots right after answering; any answer is fine.
        self.call(requests::reboot(&user, &self.device), wait, done, total)?;
        progress.finished();
        Ok(OtaReport {
            outcome: OtaOutcome::Updated,
            options,
            compression: plan.compression,
            plain_size: plan.plain_size,
            sent_bytes: plan.payload.len(),
            chunks,
            plain_md5: plan.plain_md5,
        })
    }

    fn protocol(&self, step: &str, message: String) -> Error {
        Error::Protocol {
            action: format!("OTA {step} of device {}", self.device),
            message,
        }
    }

    /// One `$ota` call, its errors turned into the OTA ones.
    fn call(
        &self,
        request: Request,
        wait: Duration,
        done: u64,
        total: u64,
    ) -> Result<Response, Error> {
        let device = self.device.to_string();
        match self.client.execute(request.with_timeout(wait)) {
            Ok(r) => Ok(r),
            // The server answers 404 for a device that is not connected (or has no such resource).
            Err(Error::NotFound { server_message, .. }) => Err(Error::OtaOffline {
                device,
                server_message,
            }),
            Err(Error::Timeout { after, .. }) if total > 0 => Err(Error::OtaStalled {
                device,
                offset: done,
                total,
                detail: Some(format!("no answer within {}s", after.as_secs())),
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(compression: Option<&str>) -> OtaOptions {
        OtaOptions {
            enabled: true,
            block_size: 4,
            timeout_ms: 30_000,
            version: "1.0".into(),
            compression: compression.map(str::to_string),
            checksum: Some("md5".into()),
            platform: None,
        }
    }

    #[test]
    fn equal_version_is_up_to_date_unless_forced() {
        let d = DeviceId::new("d").unwrap();
        let mut c = OtaConfig {
            version: Some("1.0".into()),
            ..OtaConfig::default()
        };
        assert!(matches!(
            plan(&d, b"\xe9abc", &options(None), &c).unwrap(),
            Planned::UpToDate { .. }
        ));
        c.force = true;
        assert!(matches!(
            plan(&d, b"\xe9abc", &options(None), &c).unwrap(),
            Planned::Send(_)
        ));
    }

    #[test]
    fn checksums_per_compression() {
        let d = DeviceId::new("d").unwrap();
        let image = vec![0xe9u8; 1000];
        let Planned::Send(p) =
            plan(&d, &image, &options(Some("zlib")), &OtaConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(p.begin["checksum"], md5_hex(&image));
        assert_eq!(p.begin["compressed_checksum"], md5_hex(&p.payload));
        assert_eq!(p.begin["compressed_size"], p.payload.len());
        let Planned::Send(p) =
            plan(&d, &image, &options(Some("gzip")), &OtaConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(p.begin["checksum"], md5_hex(&p.payload));
        assert_eq!(&p.payload[..2], &[0x1f, 0x8b]);
        let no = OtaConfig {
            compress: false,
            ..OtaConfig::default()
        };
        let Planned::Send(p) = plan(&d, &image, &options(Some("zlib")), &no).unwrap() else {
            panic!()
        };
        assert!(p.begin.get("compression").is_none());
        assert_eq!(p.payload, image);
    }
}
