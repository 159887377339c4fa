//! Sending firmware to a running device over the network, the way the Arduino
//! cores receive it: [`arduino`] (ArduinoOTA, what `espota.py` does) and [`http`]
//! (the ESP8266/ESP32 `HTTPUpdateServer` and ElegantOTA). The protocol pieces
//! without I/O — messages, authentication, acknowledgement accounting, HTTP
//! framing — are [`thinger_patch_core::ota`]; here are the sockets and the
//! bounded waits.

pub mod arduino;
pub mod http;

use crate::error::{Error, Result};
use std::net::{SocketAddr, ToSocketAddrs};

/// The device's address; IPv4 first (ArduinoOTA listens on IPv4).
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            let err = Error::device(format!("cannot resolve {host}: {e}"));
            if host.ends_with(".local") {
                err.with_help("a .local name needs mDNS on this computer (Avahi/nss-mdns on Linux, Bonjour on Windows); or give the device's IP address")
            } else {
                err
            }
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| Error::device(format!("{host} resolves to no address")))
}
