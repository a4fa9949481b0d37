//! A small RFC 8030 push service for the tests, written from the RFCs and independent of
//! Homeroom's code: it accepts `POST /push/{name}`, checks the VAPID header (RFC 8292: an ES256
//! JWT for this origin, signed by the key in `k=`), and decrypts the `aes128gcm` body
//! (RFC 8291 + RFC 8188) with the subscription's private key and auth secret, which only the
//! "browser" (this test) holds. What it answers can be switched, to make deliveries fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::Sha256;

/// A browser, by the name its endpoint carries (its keys stay with the service's state, as
/// they would stay in the browser).
pub struct Browser {
    pub name: String,
}

/// A message the push service accepted or refused, decrypted.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub accepted: bool,
    pub message: serde_json::Value,
    pub topic: Option<String>,
    pub urgency: Option<String>,
    /// The VAPID public key the request was signed with.
    pub vapid_key: String,
}

#[derive(Default)]
struct Inner {
    browsers: HashMap<String, (p256::SecretKey, [u8; 16])>,
    received: Vec<Received>,
    /// Answers for one browser that differ from the default.
    answers: HashMap<String, u16>,
    problems: Vec<String>,
}

#[derive(Clone)]
pub struct PushService {
    pub origin: String,
    inner: Arc<Mutex<Inner>>,
    /// The status every accepted request gets unless a browser has its own.
    default_status: Arc<AtomicU16>,
}

impl PushService {
    pub async fn start() -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let service = PushService {
            origin,
            inner: Arc::default(),
            default_status: Arc::new(AtomicU16::new(201)),
        };
        let app = axum::Router::new()
            .route("/push/{name}", axum::routing::post(receive))
            .with_state(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        service
    }

    /// A new browser with fresh keys; its subscription JSON for Homeroom.
    pub fn browser(&self, name: &str) -> (Browser, serde_json::Value) {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let auth: [u8; 16] = rand::random();
        self.inner
            .lock()
            .unwrap()
            .browsers
            .insert(name.to_owned(), (secret.clone(), auth));
        let json = serde_json::json!({
            "endpoint": format!("{}/push/{name}", self.origin),
            "keys": {
                "p256dh": B64.encode(secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": B64.encode(auth),
            }
        });
        (
            Browser {
                name: name.to_owned(),
            },
            json,
        )
    }

    /// Answers every request with `status` from now on (unless a browser has its own).
    pub fn answer(&self, status: u16) {
        self.default_status.store(status, Ordering::SeqCst);
    }

    pub fn answer_for(&self, browser: &Browser, status: u16) {
        self.inner
            .lock()
            .unwrap()
            .answers
            .insert(browser.name.clone(), status);
    }

    pub fn received(&self) -> Vec<Received> {
        let inner = self.inner.lock().unwrap();
        assert!(
            inner.problems.is_empty(),
            "push service: {:?}",
            inner.problems
        );
        inner.received.clone()
    }

    /// Accepted messages for `browser`.
    pub fn accepted_for(&self, browser: &Browser) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|r| r.accepted && r.to == browser.name)
            .map(|r| r.message)
            .collect()
    }

    /// Waits until `check` holds for what was received, failing after `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&[Received]) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            if check(&self.received()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "push service: {what} not within {within:?}; got {:#?}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(
    State(service): State<PushService>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let keys = service.inner.lock().unwrap().browsers.get(&name).cloned();
    let Some((secret, auth)) = keys else {
        return StatusCode::NOT_FOUND;
    };
    let checked =
        check_vapid(&service.origin, header("authorization").as_deref()).and_then(|vapid_key| {
            if header("content-encoding").as_deref() != Some("aes128gcm") {
                return Err("Content-Encoding is not aes128gcm".to_owned());
            }
            header("ttl").ok_or("no TTL header")?;
            let plain = decrypt(&secret, &auth, &body)?;
            let message = serde_json::from_slice(&plain).map_err(|e| format!("payload: {e}"))?;
            Ok((vapid_key, message))
        });
    let mut inner = service.inner.lock().unwrap();
    match checked {
        Ok((vapid_key, message)) => {
            let status = inner
                .answers
                .get(&name)
                .copied()
                .unwrap_or(service.default_status.load(Ordering::SeqCst));
            inner.received.push(Received {
                to: name,
                accepted: (200..300).contains(&status),
                message,
                topic: header("topic"),
                urgency: header("urgency"),
                vapid_key,
            });
            StatusCode::from_u16(status).unwrap()
        }
        Err(problem) => {
            inner.problems.push(format!("{name}: {problem}"));
            StatusCode::BAD_REQUEST
        }
    }
}

/// RFC 8292: `vapid t=<jwt>, k=<key>`; the JWT is ES256 over `header.claims`, for this origin,
/// expiring within 24 hours. Returns the key.
fn check_vapid(origin: &str, header: Option<&str>) -> Result<String, String> {
    let value = header.ok_or("no Authorization header")?;
    let rest = value
        .strip_prefix("vapid ")
        .ok_or("not a vapid Authorization")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => token = Some(v),
            Some(("k", v)) => key = Some(v),
            _ => {}
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    let public = B64
        .decode(key)
        .ok()
        .and_then(|k| VerifyingKey::from_sec1_bytes(&k).ok())
        .ok_or("k= is not a P-256 key")?;
    let (signed, signature) = token.rsplit_once('.').ok_or("JWT without signature")?;
    let signature = B64
        .decode(signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or("signature is not 64 bytes")?;
    public
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the JWT signature does not verify")?;
    let part = |i: usize| -> Result<serde_json::Value, String> {
        let text = B64
            .decode(signed.split('.').nth(i).ok_or("JWT parts")?)
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&text).map_err(|e| e.to_string())
    };
    if part(0)?["alg"] != "ES256" {
        return Err("alg is not ES256".into());
    }
    let claims = part(1)?;
    if claims["aud"] != origin {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 h"));
    }
    let sub = claims["sub"].as_str().unwrap_or("");
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(format!("sub {sub:?} is not mailto: or https:"));
    }
    Ok(key.to_owned())
}

/// RFC 8291 §3.4 and RFC 8188 §2: one record, padding delimited by 0x02.
fn decrypt(secret: &p256::SecretKey, auth: &[u8; 16], body: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body shorter than the header".into());
    }
    let salt = &body[..16];
    let record_size = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let id_len = body[20] as usize;
    let sender_key = body.get(21..21 + id_len).ok_or("short key id")?;
    let ciphertext = &body[21 + id_len..];
    if ciphertext.len() > record_size {
        return Err("more than one record".into());
    }
    let sender = p256::PublicKey::from_sec1_bytes(sender_key).map_err(|_| "keyid is not a key")?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), sender.as_affine());
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(secret.public_key().to_encoded_point(false).as_bytes());
    info.extend_from_slice(sender_key);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .unwrap();
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .unwrap();
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .unwrap();
    let mut plain = Aes128Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "AES-GCM does not open the record")?;
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(2) {
        return Err("the last record's delimiter is not 0x02".into());
    }
    Ok(plain)
}
