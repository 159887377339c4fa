//! Secrets at rest: XChaCha20-Poly1305 (random 192-bit nonces) under a key
//! derived with Argon2id from the ledger key, with a stored key check value so
//! a wrong key is refused before anything is read or written. RustCrypto does
//! all the cryptography; this module only chooses parameters and framing.

use crate::error::{Error, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use zeroize::Zeroizing;

/// The framing version of a sealed value (first byte).
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// Salt length in bytes (Argon2 asks for at least 8; 16 is the usual choice).
pub(crate) const SALT_LEN: usize = 16;
/// What the key check value encrypts, and its associated data.
const CHECK_PLAINTEXT: &[u8] = b"thinger-patch ledger key check v1";
const CHECK_AAD: &[u8] = b"thinger-patch-ledger/key-check";

/// Where the ledger key comes from. The text is never shown by `Debug`.
#[derive(Clone)]
pub enum KeySource {
    /// The value of `THINGER_PATCH_LEDGER_KEY` (the caller reads the environment).
    Env(String),
    /// A passphrase the caller asked for on the terminal.
    Passphrase(String),
    /// An entry of the system keyring (`service`, `account`). When the ledger is
    /// created and the entry does not exist, a random 256-bit key is generated
    /// and stored there.
    #[cfg(feature = "keyring")]
    Keyring {
        /// The keyring service, e.g. `thinger-patch-ledger`.
        service: String,
        /// The account, e.g. the ledger's path.
        account: String,
    },
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(_) => f.write_str("KeySource::Env(********)"),
            KeySource::Passphrase(_) => f.write_str("KeySource::Passphrase(********)"),
            #[cfg(feature = "keyring")]
            KeySource::Keyring { service, account } => {
                write!(f, "KeySource::Keyring({service}/{account})")
            }
        }
    }
}

impl KeySource {
    /// The secret bytes; `creating` lets the keyring variant make a new key.
    pub(crate) fn secret(&self, creating: bool) -> Result<Zeroizing<Vec<u8>>> {
        let _ = creating;
        let s = match self {
            KeySource::Env(s) | KeySource::Passphrase(s) => Zeroizing::new(s.as_bytes().to_vec()),
            #[cfg(feature = "keyring")]
            KeySource::Keyring { service, account } => keyring_secret(service, account, creating)?,
        };
        if s.is_empty() {
            return Err(Error::EmptyKey);
        }
        Ok(s)
    }
}

#[cfg(feature = "keyring")]
fn keyring_secret(service: &str, account: &str, creating: bool) -> Result<Zeroizing<Vec<u8>>> {
    let entry_name = format!("{service}/{account}");
    let err = |e: keyring::Error| Error::Keyring {
        entry: entry_name.clone(),
        reason: e.to_string(),
    };
    let entry = keyring::Entry::new(service, account).map_err(err)?;
    match entry.get_password() {
        Ok(p) => Ok(Zeroizing::new(p.into_bytes())),
        Err(keyring::Error::NoEntry) if creating => {
            let mut raw = Zeroizing::new([0u8; 32]);
            random(raw.as_mut())?;
            let text = Zeroizing::new(crate::engine::hex(raw.as_ref()));
            entry.set_password(&text).map_err(err)?;
            Ok(Zeroizing::new(text.as_bytes().to_vec()))
        }
        Err(e) => Err(err(e)),
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

/// Argon2id parameters, stored in the ledger beside the salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane (about 30 ms).
    fn default() -> Self {
        KdfParams {
            m_cost: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
        }
    }
}

/// The derived key, ready to seal and open values.
pub(crate) struct Cipher {
    aead: XChaCha20Poly1305,
}

impl Cipher {
    /// Argon2id(secret, salt, params) -> 32-byte XChaCha20-Poly1305 key.
    pub(crate) fn derive(secret: &[u8], salt: &[u8], params: KdfParams) -> Result<Cipher> {
        let p = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32))
            .map_err(|e| Error::Usage(format!("Argon2id parameters rejected: {e}")))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
            .hash_password_into(secret, salt, key.as_mut())
            .map_err(|e| Error::Usage(format!("Argon2id failed: {e}")))?;
        let aead = XChaCha20Poly1305::new_from_slice(key.as_ref())
            .map_err(|_| Error::Usage("the derived key has the wrong length".into()))?;
        Ok(Cipher { aead })
    }

    /// `1 || nonce (24) || ciphertext || tag (16)`, bound to `aad`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let nonce = XNonce::from(nonce);
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Usage("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The plaintext, or `None` when the blob is not authentic under this key
    /// and `aad` (wrong key, altered bytes, or moved to another row).
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEALED_V1 {
            return None;
        }
        let nonce = XNonce::try_from(&sealed[1..1 + NONCE_LEN]).ok()?;
        self.aead
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// A fresh key check value.
    pub(crate) fn key_check(&self) -> Result<Vec<u8>> {
        self.seal(CHECK_AAD, CHECK_PLAINTEXT)
    }

    /// Whether `check` was made with this key.
    pub(crate) fn verify_check(&self, check: &[u8]) -> bool {
        self.open(CHECK_AAD, check)
            .is_some_and(|p| p.as_slice() == CHECK_PLAINTEXT)
    }
}

/// The associated data binding a sealed slot value to its device and key, so a
/// ciphertext copied to another row or slot does not open.
pub(crate) fn value_aad(device: &str, key: &str) -> Vec<u8> {
    format!("thinger-patch-ledger/value\0{device}\0{key}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    #[test]
    fn seal_open_and_refuse() {
        let c = Cipher::derive(b"right", &[7; SALT_LEN], fast()).unwrap();
        let other = Cipher::derive(b"wrong", &[7; SALT_LEN], fast()).unwrap();
        let s = c.seal(b"aad", b"hunter2").unwrap();
        assert_eq!(s.len(), 1 + 24 + 7 + 16);
        assert_eq!(c.open(b"aad", &s).unwrap().as_slice(), b"hunter2");
        assert!(c.open(b"other aad", &s).is_none());
        assert!(other.open(b"aad", &s).is_none());
        // Random nonces: the same plaintext seals differently each time.
        assert_ne!(c.seal(b"aad", b"hunter2").unwrap(), s);
        let check = c.key_check().unwrap();
        assert!(c.verify_check(&check) && !other.verify_check(&check));
        let mut flipped = s.clone();
        flipped[30] ^= 1;
        assert!(c.open(b"aad", &flipped).is_none());
        assert!(format!("{:?}", KeySource::Env("hunter2".into())).contains("********"));
    }
}
