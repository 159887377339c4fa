//! The client: one API base, one credential, one transport. It adds the bearer
//! token, renews a password login once on 401, retries what is safe to retry
//! (429 always, 5xx and timeouts for idempotent methods) with bounded backoff,
//! and turns every status into a typed [`Error`].

use std::sync::Mutex;
use std::time::Duration;

use crate::auth::{self, CachedLogin, Credential, TokenSet};
use crate::error::{CredentialKind, Error, escape_message};
use crate::http::{Request, Response, Transport, TransportError};
use crate::secret::{Secret, scrub};
use crate::settings::Settings;

/// Bounded retries with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First delay; doubles each retry.
    pub base_delay: Duration,
    /// Longest delay (also caps a server's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, retry: u32, retry_after: Option<&str>) -> Duration {
        let backoff = self.base_delay.saturating_mul(1u32 << retry.min(16));
        let wanted = retry_after
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(backoff);
        wanted.min(self.max_delay)
    }
}

/// Who the client acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Thinger.io user.
    pub user: String,
    /// The API base.
    pub api: String,
    /// The kind of credential.
    pub credential: CredentialKind,
    /// When the access token expires (Unix seconds), if it does.
    pub expires_at: Option<u64>,
}

#[derive(Debug)]
struct Session {
    user: String,
    tokens: TokenSet,
}

/// A Thinger.io REST API client.
pub struct Client {
    settings: Settings,
    credential: Credential,
    transport: Box<dyn Transport>,
    retry: RetryPolicy,
    timeout: Duration,
    session: Mutex<Option<Session>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.settings.api.to_string())
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `settings.api` authenticating with `credential`.
    pub fn new(
        settings: Settings,
        credential: Credential,
        transport: impl Transport + 'static,
    ) -> Client {
        Client {
            settings,
            credential,
            transport: Box::new(transport),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            session: Mutex::new(None),
        }
    }

    /// A client with the real HTTPS transport.
    #[cfg(feature = "ureq")]
    pub fn https(settings: Settings, credential: Credential) -> Client {
        Client::new(settings, credential, crate::transport::UreqTransport::new())
    }

    /// Changes the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    /// Changes the default wait for one request (60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The user the calls act for: `[thinger] user`, else the password login's
    /// user, else the one the token or cached login names.
    pub fn user(&self) -> Result<String, Error> {
        if let Some(u) = &self.settings.user {
            return Ok(u.clone());
        }
        match &self.credential {
            Credential::Password { user, .. } => Ok(user.clone()),
            Credential::Token(t) => auth::jwt_claims(t).user.ok_or_else(|| Error::Settings {
                key: "user".into(),
                message: "the access token does not name its user; set user = \"...\" (or --thinger-user)".into(),
            }),
            Credential::Cached { .. } => {
                self.bearer()?;
                let guard = self.session.lock().expect("session lock");
                Ok(guard.as_ref().map(|s| s.user.clone()).unwrap_or_default())
            }
        }
    }

    /// Logs in now (password grant, or refresh of a cached login) and writes the
    /// cache; for an access token, only reads who it belongs to.
    pub fn login(&self) -> Result<Identity, Error> {
        if matches!(self.credential, Credential::Password { .. }) {
            *self.session.lock().expect("session lock") = None;
            self.password_login()?;
        } else {
            self.bearer()?;
        }
        self.whoami()
    }

    /// Who the client acts as, from the settings and the token (no request
    /// unless a login must be renewed).
    pub fn whoami(&self) -> Result<Identity, Error> {
        let user = self.user()?;
        let expires_at = match &self.credential {
            Credential::Token(t) => auth::jwt_claims(t).expires_at,
            _ => {
                self.bearer()?;
                self.session
                    .lock()
                    .expect("session lock")
                    .as_ref()
                    .and_then(|s| s.tokens.expires_at)
            }
        };
        Ok(Identity {
            credential: self.credential.kind(&user),
            user,
            api: self.settings.api.to_string(),
            expires_at,
        })
    }

    fn cache_path(&self) -> Option<&std::path::Path> {
        match &self.credential {
            Credential::Password { cache, .. } => cache.as_deref(),
            Credential::Cached { cache } => Some(cache),
            Credential::Token(_) => None,
        }
    }

    fn store(&self, session: &Session) -> Result<(), Error> {
        if let Some(path) = self.cache_path() {
            auth::store_cache(
                path,
                &CachedLogin {
                    api: self.settings.api.to_string(),
                    user: session.user.clone(),
                    tokens: session.tokens.clone(),
                },
            )?;
        }
        Ok(())
    }

    fn password_login(&self) -> Result<Secret, Error> {
        let Credential::Password { user, password, .. } = &self.credential else {
            unreachable!("only called for a password credential")
        };
        let response = self.send(auth::password_grant_request(user, password), None)?;
        let tokens = auth::parse_token_response(&response, auth::now_secs())?;
        let session = Session {
            user: user.clone(),
            tokens,
        };
        self.store(&session)?;
        let token = session.tokens.access_token.clone();
        *self.session.lock().expect("session lock") = Some(session);
        Ok(token)
    }

    /// The bearer token for the next call, logging in or refreshing as needed.
    fn bearer(&self) -> Result<Secret, Error> {
        if let Credential::Token(t) = &self.credential {
            return Ok(t.clone());
        }
        let now = auth::now_secs();
        let mut current = self.session.lock().expect("session lock").take();
        if current.is_none()
            && let Some(path) = self.cache_path()
            && let Some(c) = auth::load_cache(path, &self.settings.api.to_string())?
        {
            let wanted = match &self.credential {
                Credential::Password { user, .. } => Some(user.as_str()),
                _ => self.settings.user.as_deref(),
            };
            if wanted.is_none_or(|u| u == c.user) {
                current = Some(Session {
                    user: c.user,
                    tokens: c.tokens,
                });
            }
        }
        match current {
            Some(s) if !s.tokens.is_expired(now) => {
                let t = s.tokens.access_token.clone();
                *self.session.lock().expect("session lock") = Some(s);
                Ok(t)
            }
            Some(s) if s.tokens.refresh_token.is_some() => {
                let refresh = s.tokens.refresh_token.clone().expect("checked");
                match self.send(auth::refresh_request(&refresh), Some(&s.user)) {
                    Ok(response) => {
                        let mut tokens = auth::parse_token_response(&response, now)?;
                        if tokens.refresh_token.is_none() {
                            tokens.refresh_token = Some(refresh);
                        }
                        let session = Session {
                            user: s.user,
                            tokens,
                        };
                        self.store(&session)?;
                        let t = session.tokens.access_token.clone();
                        *self.session.lock().expect("session lock") = Some(session);
                        Ok(t)
                    }
                    Err(Error::Unauthorized { .. })
                        if matches!(self.credential, Credential::Password { .. }) =>
                    {
                        self.password_login()
                    }
                    Err(e) => Err(e),
                }
            }
            _ => match &self.credential {
                Credential::Password { .. } => self.password_login(),
                _ => Err(Error::NotLoggedIn {
                    api: self.settings.api.to_string(),
                }),
            },
        }
    }

    /// Marks the access token expired so the next call renews it.
    fn invalidate(&self) {
        if let Some(s) = self.session.lock().expect("session lock").as_mut() {
            s.tokens.expires_at = Some(0);
        }
    }

    /// Sends an API call and returns its 2xx response, or the typed error.
    pub fn execute(&self, mut request: Request) -> Result<Response, Error> {
        let mut renewed = false;
        loop {
            let token = self.bearer()?;
            match self.send_with(&mut request, Some(&token), None) {
                Err(Error::Unauthorized { .. })
                    if !renewed && !matches!(self.credential, Credential::Token(_)) =>
                {
                    // An access token can be revoked before its expiry: renew once.
                    renewed = true;
                    self.invalidate();
                }
                other => return other,
            }
        }
    }

    /// Sends without a bearer token (`/oauth/token`).
    fn send(&self, mut request: Request, user: Option<&str>) -> Result<Response, Error> {
        self.send_with(&mut request, None, user)
    }

    /// Adds the headers for this attempt (removed again after), sends, retries.
    fn send_with(
        &self,
        request: &mut Request,
        token: Option<&Secret>,
        user: Option<&str>,
    ) -> Result<Response, Error> {
        let own_headers = request.headers.len();
        let result = self.send_once(request, token, user);
        request.headers.truncate(own_headers);
        result
    }

    fn send_once(
        &self,
        request: &mut Request,
        token: Option<&Secret>,
        user: Option<&str>,
    ) -> Result<Response, Error> {
        let api = &self.settings.api;
        if let Some(t) = token {
            request.headers.push((
                "authorization".into(),
                Secret::new(format!("Bearer {}", t.expose())),
            ));
        }
        request
            .headers
            .push(("accept".into(), Secret::new("application/json")));
        let timeout = request.timeout.unwrap_or(self.timeout);
        let mut secrets: Vec<&Secret> = request.secrets.iter().collect();
        if let Some(t) = token {
            secrets.push(t);
        }
        let message = |r: &Response| {
            r.server_message()
                .map(|m| escape_message(&scrub(&m, &secrets)))
        };
        let idempotent = request.method.is_idempotent();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let may_retry = attempt <= self.retry.max_retries;
            let response = match self.transport.send(api, request, timeout) {
                Ok(r) => r,
                Err(TransportError::Timeout) if idempotent && may_retry => {
                    std::thread::sleep(self.retry.delay(attempt - 1, None));
                    continue;
                }
                Err(TransportError::Timeout) => {
                    return Err(Error::Timeout {
                        action: request.action.clone(),
                        api: api.to_string(),
                        after: timeout,
                    });
                }
                Err(TransportError::Tls(m)) => {
                    return Err(Error::Tls {
                        api: api.to_string(),
                        message: escape_message(&scrub(&m, &secrets)),
                    });
                }
                Err(TransportError::Connect(_)) if idempotent && may_retry => {
                    std::thread::sleep(self.retry.delay(attempt - 1, None));
                    continue;
                }
                Err(TransportError::Connect(m)) => {
                    return Err(Error::Connect {
                        api: api.to_string(),
                        message: escape_message(&scrub(&m, &secrets)),
                    });
                }
            };
            let status = response.status;
            return match status {
                200..=299 => Ok(response),
                300..=399 => Err(Error::Redirect {
                    action: request.action.clone(),
                    status,
                    location: response
                        .header("location")
                        .map(origin_of)
                        .unwrap_or_else(|| "(no location)".into()),
                }),
                401 => Err(Error::Unauthorized {
                    api: api.to_string(),
                    credential: match (&self.credential, user) {
                        (Credential::Cached { .. }, Some(u)) => {
                            CredentialKind::CachedLogin { user: u.into() }
                        }
                        (c, _) => c.kind(user.or(self.settings.user.as_deref()).unwrap_or("?")),
                    },
                    server_message: message(&response),
                }),
                403 => Err(Error::Forbidden {
                    action: request.action.clone(),
                    permission: request.permission.to_string(),
                    server_message: message(&response),
                }),
                404 => Err(Error::NotFound {
                    what: request.subject.clone(),
                    server_message: message(&response),
                }),
                409 => Err(Error::Exists {
                    what: request.subject.clone(),
                    server_message: message(&response),
                }),
                400 | 422 => {
                    let m = message(&response).unwrap_or_else(|| "(no message)".into());
                    // Some servers report a duplicate as a plain bad request.
                    if m.to_ascii_lowercase().contains("already exist") {
                        Err(Error::Exists {
                            what: request.subject.clone(),
                            server_message: Some(m),
                        })
                    } else {
                        Err(Error::Rejected {
                            action: request.action.clone(),
                            status,
                            server_message: m,
                        })
                    }
                }
                429 if may_retry => {
                    std::thread::sleep(
                        self.retry
                            .delay(attempt - 1, response.header("retry-after")),
                    );
                    continue;
                }
                429 => Err(Error::RateLimited {
                    action: request.action.clone(),
                    attempts: attempt,
                }),
                500..=599 if idempotent && may_retry => {
                    std::thread::sleep(
                        self.retry
                            .delay(attempt - 1, response.header("retry-after")),
                    );
                    continue;
                }
                500..=599 => Err(Error::Server {
                    action: request.action.clone(),
                    status,
                    attempts: attempt,
                    server_message: message(&response),
                }),
                _ => Err(Error::UnexpectedStatus {
                    action: request.action.clone(),
                    status,
                    server_message: message(&response),
                }),
            };
        }
    }
}

/// `scheme://host[:port]` of a URL, without path or query (which may carry tokens).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    let shown = if scheme.is_empty() {
        "a path on the same host".to_string()
    } else {
        format!("{scheme}://{host}")
    };
    escape_message(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, None), Duration::from_millis(500));
        assert_eq!(p.delay(2, None), Duration::from_secs(2));
        assert_eq!(p.delay(10, None), Duration::from_secs(8));
        assert_eq!(p.delay(0, Some("3")), Duration::from_secs(3));
        assert_eq!(p.delay(0, Some("3600")), Duration::from_secs(8));
    }

    #[test]
    fn redirect_origin_hides_path_and_userinfo() {
        assert_eq!(
            origin_of("https://u:p@evil.example/x?token=abc"),
            "https://evil.example"
        );
    }
}
