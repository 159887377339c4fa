//! A client for the Thinger.io REST API, for thinger-patch: settings and
//! credentials, devices, properties, dashboards from templates, and firmware
//! updates through the cloud (`$ota` device resources).
//!
//! Request building and response parsing are pure (see each module's
//! `requests` and `parse_*`); [`Transport`] is the only I/O, and
//! [`UreqTransport`] the real one (HTTPS with rustls, no redirects followed).
//! Secrets are [`Secret`]s: masked in `Debug`/`Display` and scrubbed from
//! server messages. See `docs/thinger.md` for every endpoint used.
//!
//! ```no_run
//! use thinger_patch_cloud::{Client, Credential, DeviceId, DeviceSpec, IfExists, NoProgress, Secret, Settings};
//! # fn main() -> Result<(), thinger_patch_cloud::Error> {
//! let settings = Settings::from_table(None)?.with_user("alice")?;
//! let client = Client::https(settings, Credential::Token(Secret::new("eyJ...")));
//! let id = DeviceId::new("kitchen")?;
//! let credentials = thinger_patch_cloud::generate_credentials(Some(40))?;
//! client.device(&id).ensure(&DeviceSpec::new(id.clone()), &credentials, IfExists::Fail)?;
//! client.ota(&id).send(&std::fs::read("app.bin").unwrap(), Some("1.1"), &mut NoProgress)?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod dashboard;
pub mod device;
pub mod error;
pub mod http;
mod ids;
pub mod ota;
pub mod properties;
pub mod secret;
pub mod settings;
#[cfg(feature = "ureq")]
pub mod transport;

pub use auth::Credential;
pub use client::{Client, Identity, RetryPolicy};
pub use dashboard::{PreparedDashboard, PushMode, Pushed, Substitutions, Template, UnknownKeys};
pub use device::{DeviceInfo, DeviceSpec, Ensured, IfExists, generate_credentials};
pub use error::{CredentialKind, Error};
pub use http::{Body, Method, Request, Response, Transport, TransportError};
pub use ids::DeviceId;
pub use ota::{NoProgress, OtaOutcome, OtaReport, Progress};
pub use properties::{Property, provisioning_properties};
pub use secret::{MASK, Secret};
pub use settings::{ApiBase, CredentialSource, Settings, ValueSource};
#[cfg(feature = "ureq")]
pub use transport::UreqTransport;
