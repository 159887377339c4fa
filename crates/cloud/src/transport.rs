//! The real transport: `ureq` with rustls (ring provider, webpki roots). It never
//! follows a redirect and sends only to the configured API base.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use crate::http::{Body, Method, Request, Response, Transport, TransportError};
use crate::settings::ApiBase;

/// Largest answer we read (dashboards and device lists are small).
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// Agents kept, one per distinct wait (each has its own connection pool).
const MAX_AGENTS: usize = 4;

/// HTTPS through `ureq`.
pub struct UreqTransport {
    // One agent per wait: a per-request configuration costs as much as a loopback
    // round trip, and an OTA sends all its calls with one wait.
    agents: Mutex<Vec<(Duration, ureq::Agent)>>,
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl UreqTransport {
    /// A transport with connection reuse, no redirects and HTTP errors returned as responses.
    pub fn new() -> UreqTransport {
        UreqTransport {
            agents: Mutex::new(Vec::new()),
        }
    }

    fn agent(&self, timeout: Duration) -> ureq::Agent {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, a)) = agents.iter().find(|(t, _)| *t == timeout) {
            return a.clone();
        }
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            // Each phase bounded: ureq's overall deadline costs ~50 µs a request,
            // more than a loopback round trip, and a bound per phase is as safe.
            .timeout_connect(Some(Duration::from_secs(15).min(timeout)))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .user_agent(concat!("thinger-patch/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        if agents.len() == MAX_AGENTS {
            agents.remove(0);
        }
        agents.push((timeout, agent.clone()));
        agent
    }
}

impl Transport for UreqTransport {
    fn send(
        &self,
        api: &ApiBase,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        debug_assert!(request.path.starts_with('/'));
        let url = api.url(&request.path);
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        if let Some(ct) = request.body.content_type() {
            builder = builder.header("content-type", ct);
        }
        let agent = self.agent(timeout);
        let built = |e: ureq::http::Error| {
            TransportError::Connect(format!("cannot build the request: {e}"))
        };
        let mut response = match (&request.body, request.method) {
            // No body at all on GET/DELETE; `content-length: 0` on an empty POST/PUT.
            (Body::Empty, Method::Get | Method::Delete) => {
                agent.run(builder.body(()).map_err(built)?)
            }
            (other, _) => agent.run(builder.body(other.bytes()).map_err(built)?),
        }
        .map_err(map_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_RESPONSE)
            .read_to_end(&mut body)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    TransportError::Timeout
                } else {
                    TransportError::Connect(format!("reading the answer: {e}"))
                }
            })?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn map_error(e: ureq::Error) -> TransportError {
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        ureq::Error::Tls(m) => TransportError::Tls(m.to_string()),
        ureq::Error::Rustls(e) => TransportError::Tls(e.to_string()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => TransportError::Timeout,
        ureq::Error::Io(io) => {
            // rustls failures (certificate, handshake) reach us as I/O errors wrapping its own.
            let tls = io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if tls {
                TransportError::Tls(io.to_string())
            } else {
                TransportError::Connect(io.to_string())
            }
        }
        ureq::Error::HostNotFound => TransportError::Connect("host not found".into()),
        ureq::Error::ConnectionFailed => TransportError::Connect("connection failed".into()),
        other => TransportError::Connect(other.to_string()),
    }
}
