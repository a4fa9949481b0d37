//! Time-limited TURN credentials in the "TURN REST API" form every browser and coturn know
//! (RFC 8489 long-term credentials): the username is `<expiry unix seconds>:<who>` and the
//! password is base64(HMAC-SHA1(secret, username)). The server keeps no list of them: it
//! recomputes the password from the username, so an expired or forged one is refused without
//! a lookup, and a restart (the secret lives in the database) honours what was handed out.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};

/// Why a username is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not `<expiry>:<who>`.
    Malformed,
    /// Its expiry has passed.
    Expired,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "bad_username",
            Refusal::Expired => "expired",
        }
    }
}

pub struct Credentials {
    secret: Vec<u8>,
    ttl: Duration,
    pub realm: String,
}

impl Credentials {
    pub fn new(secret: &str, ttl: Duration, realm: &str) -> Credentials {
        Credentials {
            secret: secret.as_bytes().to_vec(),
            ttl,
            realm: realm.to_owned(),
        }
    }

    /// A fresh credential for `who` (e.g. `p123` for participant 123): (username, password,
    /// expiry in unix seconds).
    pub fn mint(&self, who: &str, now: SystemTime) -> (String, String, u64) {
        let expiry = unix_secs(now) + self.ttl.as_secs();
        let username = format!("{expiry}:{who}");
        let password = self.password(&username);
        (username, password, expiry)
    }

    /// base64(HMAC-SHA1(secret, username)).
    pub fn password(&self, username: &str) -> String {
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Whether `username` is well-formed and not yet expired at `now`.
    pub fn check(&self, username: &str, now: SystemTime) -> Result<(), Refusal> {
        let (expiry, who) = username.split_once(':').ok_or(Refusal::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| Refusal::Malformed)?;
        let who_ok = !who.is_empty()
            && who.len() <= 64
            && who.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !who_ok {
            return Err(Refusal::Malformed);
        }
        if expiry <= unix_secs(now) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }

    /// The long-term key (MD5 of `username:realm:password`) that MESSAGE-INTEGRITY is keyed
    /// with, for a username that passes `check`.
    pub fn key(&self, username: &str, now: SystemTime) -> Result<Vec<u8>, Refusal> {
        self.check(username, now)?;
        Ok(turn::auth::generate_auth_key(
            username,
            &self.realm,
            &self.password(username),
        ))
    }
}

/// The TURN server asks this for the key of every authenticated request; an expired or
/// malformed username gets none, and the server refuses the request. A forged password
/// fails the MESSAGE-INTEGRITY check that follows.
impl turn::auth::AuthHandler for Credentials {
    fn auth_handle(
        &self,
        username: &str,
        _realm: &str,
        _src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.key(username, SystemTime::now())
            .map_err(|refusal| turn::Error::Other(refusal.reason().to_owned()))
    }
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials::new("s3cret", Duration::from_secs(3600), "homeroom")
    }

    #[test]
    fn minted_credentials_check_until_they_expire() {
        let credentials = credentials();
        let now = SystemTime::now();
        let (username, password, expiry) = credentials.mint("p42", now);
        assert!(username.ends_with(":p42"));
        assert_eq!(password, credentials.password(&username));
        assert!(credentials.check(&username, now).is_ok());
        let later = UNIX_EPOCH + Duration::from_secs(expiry);
        assert_eq!(credentials.check(&username, later), Err(Refusal::Expired));
    }

    #[test]
    fn malformed_usernames_are_refused() {
        let credentials = credentials();
        let now = SystemTime::now();
        for bad in [
            "",
            "p42",
            "soon:p42",
            "99999999999:",
            "99999999999:a b",
            "x:y:z",
        ] {
            assert_eq!(
                credentials.check(bad, now),
                Err(Refusal::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn password_is_the_rest_api_hmac() {
        // coturn's static-auth-secret: base64(HMAC-SHA1(secret, username)).
        let credentials = Credentials::new("north", Duration::from_secs(60), "r");
        assert_eq!(
            credentials.password("1700000000:p1"),
            credentials.password("1700000000:p1")
        );
        assert_ne!(
            credentials.password("1700000000:p1"),
            credentials.password("1700000000:p2")
        );
        assert_eq!(credentials.password("1700000000:p1").len(), 28);
    }
}
