//! Web Push delivery: one POST to a browser's push service (RFC 8030), the payload encrypted
//! for that browser (RFC 8291, `aes128gcm`), signed with our VAPID key (RFC 8292).
//!
//! Encryption is `web-push-native`'s (pure Rust on the RustCrypto crates, so no OpenSSL, which
//! the `web-push` crate's `ece` dependency pulls in); the HTTP request is ours, over the
//! rustls `reqwest` client the crate already uses, and so is the VAPID header (`vapid.rs`):
//! `web-push-native`'s leaves the port out of the JWT audience, which RFC 8292 defines as the
//! push resource's origin.

use std::net::IpAddr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::StatusCode;

use super::vapid::Vapid;

/// How long a push service keeps a message for a browser that is offline.
const TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A browser's subscription as its `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint: String,
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// What became of one delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// 404 or 410: the subscription expired or was withdrawn; forget it.
    Gone,
    /// A network error, 429 or 5xx: try again later.
    Retry(String),
    /// The push service refused the message itself; trying again would not help.
    Refused(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscriptionError {
    #[error("the endpoint is not a URL")]
    NotUrl,
    #[error("push endpoints must be https: URLs on a public host")]
    NotPublicHttps,
    #[error("keys.p256dh must be a base64url P-256 public key")]
    BadKey,
    #[error("keys.auth must be 16 bytes, base64url")]
    BadAuth,
}

impl Subscription {
    /// Checks what a browser sent before it is stored. Unless `allow_insecure` (tests), the
    /// endpoint must be https and not an address on this machine or its private network:
    /// the server posts to whatever a subscription names.
    pub fn parse(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        allow_insecure: bool,
    ) -> Result<Subscription, SubscriptionError> {
        let url = url::Url::parse(endpoint).map_err(|_| SubscriptionError::NotUrl)?;
        let host_is_internal = match url.host() {
            Some(url::Host::Ipv4(ip)) => internal(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => internal(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
            None => true,
        };
        let secure = url.scheme() == "https" && !host_is_internal;
        let allowed = allow_insecure && matches!(url.scheme(), "http" | "https");
        if !(secure || allowed) {
            return Err(SubscriptionError::NotPublicHttps);
        }
        let subscription = Subscription {
            endpoint: url.into(),
            p256dh: p256dh.to_owned(),
            auth: auth.to_owned(),
        };
        subscription.keys()?;
        Ok(subscription)
    }

    fn keys(&self) -> Result<(p256::PublicKey, web_push_native::Auth), SubscriptionError> {
        let key = B64
            .decode(self.p256dh.trim_end_matches('='))
            .ok()
            .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok())
            .ok_or(SubscriptionError::BadKey)?;
        let auth = B64
            .decode(self.auth.trim_end_matches('='))
            .ok()
            .filter(|bytes| bytes.len() == 16)
            .ok_or(SubscriptionError::BadAuth)?;
        Ok((key, web_push_native::Auth::clone_from_slice(&auth)))
    }
}

fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
        }
        IpAddr::V6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Encrypts `payload` for the subscription and posts it. `topic` lets the push service replace
/// an undelivered message about the same thing instead of queueing a second one.
pub async fn send(
    client: &reqwest::Client,
    vapid: &Vapid,
    subscription: &Subscription,
    payload: &[u8],
    topic: &str,
    urgent: bool,
) -> Outcome {
    let (key, auth) = match subscription.keys() {
        Ok(keys) => keys,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let body = match web_push_native::encrypt(payload.to_vec(), &key, &auth) {
        Ok(body) => body,
        Err(e) => return Outcome::Refused(format!("cannot encrypt: {e}")),
    };
    let Ok(endpoint) = url::Url::parse(&subscription.endpoint) else {
        return Outcome::Refused("bad endpoint".into());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let request = client
        .post(endpoint.clone())
        .header("TTL", TTL.as_secs())
        .header("Urgency", if urgent { "high" } else { "normal" })
        .header("Topic", topic)
        .header("Content-Encoding", "aes128gcm")
        .header("Content-Type", "application/octet-stream")
        .header("Authorization", vapid.authorization(&endpoint, now))
        .body(body);
    match request.send().await {
        Ok(response) => match response.status() {
            s if s.is_success() => Outcome::Sent,
            StatusCode::NOT_FOUND | StatusCode::GONE => Outcome::Gone,
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                Outcome::Retry(format!("push service answered {s}"))
            }
            s => Outcome::Refused(format!("push service answered {s}")),
        },
        Err(e) => Outcome::Retry(format!("push service unreachable: {e}")),
    }
}

/// The HTTP client for push services: rustls, no redirects (a push service answers directly),
/// bounded in time so one slow service cannot hold the worker.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("a rustls client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    use p256::elliptic_curve::sec1::ToEncodedPoint;

    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn key() -> String {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        B64.encode(secret.public_key().to_encoded_point(false).as_bytes())
    }

    #[test]
    fn endpoints_must_be_public_https_unless_allowed() {
        let key = key();
        let parse = |endpoint, insecure| Subscription::parse(endpoint, &key, AUTH, insecure);
        assert!(parse("https://push.example/send/1", false).is_ok());
        for endpoint in [
            "http://push.example/send/1",
            "https://127.0.0.1/send/1",
            "https://10.1.2.3/x",
            "https://[::1]/x",
            "https://localhost/x",
            "ftp://push.example/x",
        ] {
            assert_eq!(
                parse(endpoint, false).unwrap_err(),
                SubscriptionError::NotPublicHttps,
                "{endpoint}"
            );
        }
        assert!(parse("http://127.0.0.1:9000/x", true).is_ok());
        assert!(parse("ftp://127.0.0.1/x", true).is_err());
    }

    #[test]
    fn keys_are_checked() {
        let parse = |key, auth| Subscription::parse("https://push.example/x", key, auth, false);
        assert_eq!(parse("AAAA", AUTH).unwrap_err(), SubscriptionError::BadKey);
        assert_eq!(
            parse(&key(), "AAAA").unwrap_err(),
            SubscriptionError::BadAuth
        );
    }
}
