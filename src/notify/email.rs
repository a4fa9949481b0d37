//! Email over SMTP with `lettre` on rustls (no OpenSSL): plain-text messages, each with a
//! one-click "stop these" link (RFC 8058 `List-Unsubscribe-Post`) when it is one of a series.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::config::{EmailConfig, SmtpSecurity};
use super::push::Outcome;

/// One message as the outbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Email {
    pub subject: String,
    pub text: String,
    /// The page that stops this series (digests), for the reader; none for a one-off message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_url: Option<String>,
    /// Where a mail client posts `List-Unsubscribe=One-Click` to stop the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_post_url: Option<String>,
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The configured SMTP server, or `None` when email is off.
    pub fn new(config: &EmailConfig) -> anyhow::Result<Option<Mailer>> {
        let Some(host) = &config.smtp_host else {
            return Ok(None);
        };
        type Smtp = AsyncSmtpTransport<Tokio1Executor>;
        let mut builder = match config.security {
            SmtpSecurity::Tls => Smtp::relay(host)?,
            SmtpSecurity::Starttls => Smtp::starttls_relay(host)?,
            SmtpSecurity::None => Smtp::builder_dangerous(host),
        };
        if let Some(port) = config.smtp_port {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Some(Mailer {
            transport: builder.timeout(Some(Duration::from_secs(30))).build(),
            from: config.from.parse()?,
        }))
    }

    pub async fn send(&self, to: &str, email: &Email) -> Outcome {
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(e) => return Outcome::Refused(format!("bad address: {e}")),
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone());
        let mut text = email.text.clone();
        if let Some(stop) = &email.stop_url {
            text.push_str(&format!("\n\nStop these emails with one click: {stop}\n"));
        }
        if let Some(stop) = &email.stop_post_url {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{stop}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let message = match builder.body(text) {
            Ok(message) => message,
            Err(e) => return Outcome::Refused(format!("cannot build the message: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Sent,
            Err(e) if e.is_permanent() => Outcome::Refused(e.to_string()),
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }
}

/// Checks an address typed into a page before anything is queued for it.
pub fn parse_address(text: &str) -> Option<String> {
    let text = text.trim();
    text.parse::<lettre::Address>()
        .ok()
        .map(|address| address.to_string())
}
