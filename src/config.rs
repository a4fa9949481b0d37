//! Configuration: one TOML file, every key overridable by a `HOMEROOM_*` variable.
//!
//! The file and the environment are merged into one TOML table before it is checked, so a bad
//! value reads the same wherever it came from: the error names the key (`tls.cert`), and an
//! unknown key is an error rather than a silently ignored typo.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Variables that steer the process or the test suite rather than name a key.
fn is_key_variable(name: &str) -> bool {
    name.starts_with("HOMEROOM_")
        && name != "HOMEROOM_CONFIG"
        && !name.starts_with("HOMEROOM_TEST_")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTPS (or, behind a proxy, plain HTTP) server listens on.
    pub listen: SocketAddr,
    /// The address families type into their browser; used in invite links and printed URLs.
    /// Derived from the host name and port when absent.
    pub public_url: Option<url::Url>,
    /// Where the SQLite database and uploaded files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `homeroom.db` in `data_dir`.
    pub database_url: Option<String>,
    pub log_format: LogFormat,
    /// Serve the browser app from this folder instead of the copy built into the binary, so
    /// edits to `web/` show on reload during development.
    pub web_dir: Option<PathBuf>,
    /// Bearer token a monitoring system sends to read `/metrics`. Without one, `/metrics`
    /// answers only clients on this machine (loopback), and nobody when behind a proxy.
    pub metrics_token: Option<String>,
    /// This node's name in a shared database: the live sessions it runs carry it, and its
    /// start-up closes only those. Defaults to the host name.
    pub node_id: Option<String>,
    /// Answer every request with `x-homeroom-queries: <n>`, the store calls it made (tests and
    /// `homeroom bench`; off in production).
    pub count_queries: bool,
    pub tls: TlsConfig,
    pub media: MediaConfig,
    pub limits: LimitsConfig,
    pub recording: RecordingConfig,
    /// Web Push and the delivery worker.
    pub notify: crate::notify::NotifyConfig,
    /// SMTP for invitations, reset links and digests; off without `smtp_host`.
    pub email: crate::notify::EmailConfig,
    /// The built-in TURN relay (off by default).
    pub turn: crate::turn::TurnConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`, replaces the generated self-signed certificate.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Where the self-signed certificate is generated and kept between starts.
    pub cert_dir: PathBuf,
    /// Serve plain HTTP because a reverse proxy terminates TLS in front of us.
    pub behind_proxy: bool,
    /// Optional plain-HTTP listener that only redirects to HTTPS.
    pub redirect_from: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The one UDP port all media uses (ICE over TCP uses the HTTPS port). Default: the HTTPS
    /// port's number, so a school opens that number for TCP and UDP and nothing else; 0 takes
    /// any free port.
    pub port: Option<u16>,
    /// No longer used (media shares one port); still read so older config files load.
    pub udp_ports: Option<PortRange>,
    /// The public address of this machine when it sits behind a 1:1 NAT.
    pub public_ip: Option<IpAddr>,
    /// Only offer ICE candidates on these local addresses (empty: all interfaces).
    pub interfaces: Vec<IpAddr>,
    /// Also offer ICE over TCP, for networks that block UDP.
    pub ice_tcp: bool,
    /// STUN/TURN servers handed to clients when they join (the server's own connections
    /// never use them: it is reached directly).
    pub ice_servers: Vec<IceServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest signalling message accepted, in bytes.
    pub max_message_bytes: usize,
    pub max_participants_per_room: usize,
    pub max_rooms_per_node: usize,
    /// Participants in all live rooms of this server together; past it, new viewers get
    /// `node_full` (hosts still get into their own rooms). Size it to the machine: see
    /// docs/performance.md for what two cores carry.
    pub max_participants_per_node: usize,
    /// Milliseconds the media reactors may run late (smoothed over about a second) before new
    /// viewers get `node_full` (past half of it, only a few a second get in): whatever the
    /// machine, past this the viewers already watching start to lose packets.
    pub max_media_lag_ms: u64,
    /// Largest upload accepted, in megabytes.
    pub max_upload_mb: u64,
    /// Guests (open-house link holders) in one open-house room at once; a guest link is
    /// shared freely, so without a bound its holders could take every media port.
    pub max_guests_per_room: usize,
    /// Guest signalling sockets open at once from one IP address.
    pub max_guests_per_ip: usize,
    /// Seconds a participant's peer connection may take to connect after the server made it;
    /// a participant that never completes it is dropped and its connection freed.
    pub media_connect_timeout_secs: u64,
    /// Seconds a signalling socket may stay silent (clients ping every 10 s) before the server
    /// closes it and the participant leaves: a phone that vanished does not linger.
    pub idle_timeout_secs: u64,
    /// Connection checks (`/check`) running at once; each holds a media connection for a few
    /// seconds.
    pub max_connection_checks: usize,
    /// Seconds the server waits for the answer to a subscriber offer before it rolls the
    /// offer back and makes a fresh one.
    pub subscriber_answer_timeout_secs: u64,
}

/// Recordings of live sessions (`src/recording/`), kept in `data_dir/recordings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Days a finished recording is kept; the cleaner deletes older ones.
    pub retention_days: u64,
    /// Free space (MB) the recordings' disk must keep: under it a recording refuses to start,
    /// and one running stops cleanly.
    pub min_free_mb: u64,
    /// Seconds between runs of the retention cleaner.
    pub cleanup_interval_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// An inclusive port range written as "low-high".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected a port range like \"50000-50199\", got {s:?}");
        let (low, high) = s.split_once('-').ok_or_else(bad)?;
        let low: u16 = low.trim().parse().map_err(|_| bad())?;
        let high: u16 = high.trim().parse().map_err(|_| bad())?;
        if low == 0 || low > high {
            return Err(bad());
        }
        Ok(PortRange { low, high })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8443".parse().expect("valid default"),
            public_url: None,
            data_dir: "data".into(),
            database_url: None,
            log_format: LogFormat::Text,
            web_dir: None,
            metrics_token: None,
            node_id: None,
            count_queries: false,
            tls: TlsConfig::default(),
            media: MediaConfig::default(),
            limits: LimitsConfig::default(),
            recording: RecordingConfig::default(),
            notify: Default::default(),
            email: Default::default(),
            turn: Default::default(),
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            retention_days: 60,
            min_free_mb: 1024,
            cleanup_interval_secs: 3600,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            cert_dir: "certs".into(),
            behind_proxy: false,
            redirect_from: None,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            port: None,
            udp_ports: None,
            public_ip: None,
            interfaces: Vec::new(),
            ice_tcp: true,
            ice_servers: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            max_participants_per_room: 500,
            max_rooms_per_node: 100,
            max_participants_per_node: 400,
            max_media_lag_ms: 10,
            max_upload_mb: 50,
            max_guests_per_room: 100,
            max_guests_per_ip: 8,
            media_connect_timeout_secs: 30,
            idle_timeout_secs: 30,
            subscriber_answer_timeout_secs: 10,
            max_connection_checks: 8,
        }
    }
}

impl Config {
    /// Reads the file (if any) and applies the `HOMEROOM_*` variables of `env` over it.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.message().to_owned(),
                    })?
            }
            None => toml::Table::new(),
        };
        let overrides: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| is_key_variable(k))
            .collect();
        for (name, value) in overrides {
            apply_override(&mut table, &name, &value);
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Key {
                    key: e.path().to_string(),
                    message: e.inner().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let key_error = |key: &str, message: &str| ConfigError::Key {
            key: key.into(),
            message: message.into(),
        };
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(key_error(
                "tls.cert",
                "tls.cert and tls.key must be given together",
            ));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:"))
            {
                return Err(key_error(
                    "database_url",
                    "must start with sqlite: or postgres:",
                ));
            }
        }
        if self.limits.max_message_bytes < 1024 {
            return Err(key_error(
                "limits.max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.limits.subscriber_answer_timeout_secs == 0 {
            return Err(key_error(
                "limits.subscriber_answer_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.recording.cleanup_interval_secs == 0 {
            return Err(key_error(
                "recording.cleanup_interval_secs",
                "must be at least 1",
            ));
        }
        if let Err((key, message)) = self.email.validate() {
            return Err(key_error(key, &message));
        }
        if let Err((key, message)) = self.turn.validate() {
            return Err(key_error(key, &message));
        }
        if self.limits.media_connect_timeout_secs == 0 {
            return Err(key_error(
                "limits.media_connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.limits.idle_timeout_secs == 0 {
            return Err(key_error("limits.idle_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("homeroom.db").display()
            ),
        }
    }

    /// The base URL printed in links: the configured one, or one made from the host name.
    pub fn public_url(&self, bound: SocketAddr) -> url::Url {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let scheme = if self.tls.behind_proxy {
            "http"
        } else {
            "https"
        };
        let host = if bound.ip().is_unspecified() {
            gethostname::gethostname().to_string_lossy().into_owned()
        } else {
            bound.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        url::Url::parse(&format!("{scheme}://{host}:{}/", bound.port())).expect("valid url")
    }
}

/// `HOMEROOM_TLS_CERT` sets `tls.cert`, `HOMEROOM_DATA_DIR` sets `data_dir`: a first word that
/// names a section selects it. The value is read as TOML when it parses (numbers, booleans,
/// arrays) and as a plain string otherwise.
fn apply_override(table: &mut toml::Table, name: &str, value: &str) {
    const SECTIONS: &[&str] = &[
        "tls",
        "media",
        "limits",
        "recording",
        "notify",
        "email",
        "turn",
    ];
    let key = name.trim_start_matches("HOMEROOM_").to_ascii_lowercase();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let section = SECTIONS
        .iter()
        .find(|s| key.starts_with(&format!("{s}_")))
        .copied();
    match section {
        Some(section) => {
            let field = key[section.len() + 1..].to_owned();
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(field, parsed);
            }
        }
        None => {
            table.insert(key, parsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("homeroom.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = load_str("", &[]).unwrap();
        assert_eq!(config.listen.port(), 8443);
        assert!(config.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_str("[tls]\ncertt = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("certt"), "{err}");
    }

    #[test]
    fn bad_value_names_its_key() {
        let err = load_str("listen = \"nowhere\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`listen`"), "{err}");
        let err = load_str("[media]\nudp_ports = \"9-1\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("media.udp_ports"), "{err}");
    }

    #[test]
    fn environment_overrides_file() {
        let config = load_str(
            "listen = \"127.0.0.1:1\"\n[limits]\nmax_upload_mb = 5\n",
            &[
                ("HOMEROOM_LISTEN", "127.0.0.1:2"),
                ("HOMEROOM_LIMITS_MAX_UPLOAD_MB", "7"),
                ("HOMEROOM_TLS_BEHIND_PROXY", "true"),
                ("HOMEROOM_CONFIG", "ignored"),
                ("HOMEROOM_TEST_POSTGRES", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.limits.max_upload_mb, 7);
        assert!(config.tls.behind_proxy);
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let err = load_str("", &[("HOMEROOM_LISTNE", "x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("homeroom.example.toml");
        Config::load(Some(&path), []).unwrap();
    }

    #[test]
    fn turn_is_off_until_enabled_and_takes_overrides() {
        let config = load_str("", &[]).unwrap();
        assert!(!config.turn.enabled);
        assert_eq!(config.turn.udp_port, 3478);
        let config = load_str(
            "[turn]\nenabled = true\n",
            &[
                ("HOMEROOM_TURN_TLS_PORT", "443"),
                ("HOMEROOM_TURN_RELAY_PORTS", "49160-49200"),
            ],
        )
        .unwrap();
        assert!(config.turn.enabled);
        assert_eq!(config.turn.tls_port, Some(443));
        assert_eq!(config.turn.relay_ports.map(|r| r.low), Some(49160));
        let err = load_str("[turn]\nmax_allocations_per_user = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("turn.max_allocations_per_user"), "{err}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let err = load_str("[tls]\ncert = \"a.pem\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.key"), "{err}");
    }
}
