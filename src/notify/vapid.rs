//! The server's VAPID identity (RFC 8292): a P-256 key generated on first start and kept in
//! the data directory (`vapid.key`, mode 0600) like the TLS certificate, so browsers'
//! subscriptions, which are bound to its public key, survive restarts.
//!
//! Each push request carries `Authorization: vapid t=<JWT>, k=<public key>`, the JWT signed
//! with ES256 and naming the push service's origin (scheme, host and port) as its audience.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

/// How long a signed request stays valid; RFC 8292 allows at most 24 hours.
const VALIDITY: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("cannot read or write the VAPID key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the VAPID key {path} is not a base64url P-256 private key")]
    Malformed { path: PathBuf },
}

pub struct Vapid {
    key: SigningKey,
    /// `mailto:` or `https:` address for the push service's operators.
    contact: String,
}

impl Vapid {
    /// Reads `data_dir/vapid.key`, generating it when absent.
    pub fn load_or_create(data_dir: &Path, contact: String) -> Result<Vapid, VapidError> {
        let path = data_dir.join("vapid.key");
        let io = |source| VapidError::Io {
            path: path.clone(),
            source,
        };
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => B64
                .decode(text.trim())
                .ok()
                .and_then(|bytes| SigningKey::from_slice(&bytes).ok())
                .ok_or_else(|| VapidError::Malformed { path: path.clone() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::random(&mut rand::rngs::OsRng);
                std::fs::create_dir_all(data_dir).map_err(io)?;
                crate::tls::write_private(&path, B64.encode(key.to_bytes()).as_bytes())
                    .map_err(io)?;
                tracing::info!(path = %path.display(), "generated the VAPID key for Web Push");
                key
            }
            Err(e) => return Err(io(e)),
        };
        Ok(Vapid { key, contact })
    }

    /// The public key browsers pass to `pushManager.subscribe` (`applicationServerKey`):
    /// the uncompressed point, base64url.
    pub fn public_key(&self) -> String {
        let point = self.key.verifying_key().to_encoded_point(false);
        B64.encode(point.as_bytes())
    }

    /// The `Authorization` header for a request to `endpoint`.
    pub fn authorization(&self, endpoint: &url::Url, now_secs: u64) -> String {
        let audience = endpoint.origin().ascii_serialization();
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": now_secs + VALIDITY.as_secs(),
            "sub": self.contact,
        });
        let signed = format!("{header}.{}", B64.encode(claims.to_string()));
        let signature: Signature = self.key.sign(signed.as_bytes());
        format!(
            "vapid t={signed}.{}, k={}",
            B64.encode(signature.to_bytes()),
            self.public_key()
        )
    }

    /// A key for HMACs of our own (the "stop these" links in emails), derived from the
    /// private key so there is one secret to keep, not two.
    pub fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"homeroom ");
        hash.update(purpose.as_bytes());
        hash.update(self.key.to_bytes());
        hash.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    #[test]
    fn the_key_is_kept_and_the_jwt_verifies_against_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Vapid::load_or_create(dir.path(), "mailto:a@b.example".into()).unwrap();
        let again = Vapid::load_or_create(dir.path(), "mailto:a@b.example".into()).unwrap();
        assert_eq!(first.public_key(), again.public_key());

        let endpoint = url::Url::parse("https://push.example:8443/send/abc").unwrap();
        let header = first.authorization(&endpoint, 1_000);
        let (token, key) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let public = VerifyingKey::from_sec1_bytes(&B64.decode(key).unwrap()).unwrap();
        let signature = Signature::from_slice(&B64.decode(signature).unwrap()).unwrap();
        public.verify(signed.as_bytes(), &signature).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(signed.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(claims["aud"], "https://push.example:8443");
        assert_eq!(claims["exp"], 1_000 + 12 * 3600);
    }
}
