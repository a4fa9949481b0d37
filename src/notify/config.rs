//! The `[notify]` and `[email]` sections of the config file (`crate::config` merges them in).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Who push services may contact about our messages (RFC 8292 `sub`): a `mailto:` or
    /// `https:` address. Defaults to the public URL.
    pub vapid_contact: Option<String>,
    /// Accept push endpoints that are plain `http:` or on a loopback or private address.
    /// Only for tests and development: real push services are public `https:` servers, and a
    /// subscription naming an internal address would make the server post to it.
    pub allow_insecure_endpoints: bool,
    /// Delivery attempts before a notification is given up.
    pub max_attempts: u32,
    /// The first retry waits this long; each further one twice as long (capped at an hour).
    pub retry_base_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            vapid_contact: None,
            allow_insecure_endpoints: false,
            max_attempts: 8,
            retry_base_ms: 2_000,
        }
    }
}

/// SMTP: without `smtp_host` nothing is emailed and links are handed over as before.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub smtp_host: Option<String>,
    /// Defaults to 465 for `tls`, 587 for `starttls`, 25 for `none`.
    pub smtp_port: Option<u16>,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Homeroom <homeroom@school.example>`.
    pub from: String,
}

/// How the connection to the SMTP server is protected (rustls in every case but `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// No encryption: only for a relay on this machine.
    None,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_host: None,
            smtp_port: None,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            from: "Homeroom <homeroom@localhost>".into(),
        }
    }
}

impl EmailConfig {
    /// The first key that is wrong, and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Err(e) = self.from.parse::<lettre::message::Mailbox>() {
            return Err(("email.from", format!("not an email address: {e}")));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err((
                "email.username",
                "email.username and email.password must be given together".into(),
            ));
        }
        Ok(())
    }
}
