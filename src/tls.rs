//! The TLS certificate: a configured PEM pair, or a self-signed one generated on first start.
//!
//! The generated pair is written to `cert_dir` and reused, so browsers that were told to trust
//! it once keep trusting it across restarts. Only rustls (with ring) is used anywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("{path} is not valid PEM: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("certificate and key do not make a usable pair: {0}")]
    Rejected(#[from] rustls::Error),
    #[error("cannot write the generated certificate into {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Builds the server's rustls configuration, generating the self-signed pair if needed.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => ensure_self_signed(&tls.cert_dir)?,
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Installs ring as the process-wide crypto provider; harmless when called twice.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("self-signed.crt");
    let key_path = dir.join("self-signed.key");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !host.is_empty() && !names.contains(&host) {
        names.push(host);
    }
    let generated = rcgen::generate_simple_self_signed(names)?;
    let write = |path: &Path, text: String| {
        std::fs::create_dir_all(dir)
            .and_then(|_| write_private(path, text.as_bytes()))
            .map_err(|source| TlsError::Write {
                path: path.to_owned(),
                source,
            })
    };
    write(&cert_path, generated.cert.pem())?;
    write(&key_path, generated.key_pair.serialize_pem())?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate");
    Ok((cert_path, key_path))
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Malformed {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| TlsError::Malformed {
            path: path.to_owned(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_in(dir: &Path) -> TlsConfig {
        TlsConfig {
            cert_dir: dir.to_owned(),
            ..TlsConfig::default()
        }
    }

    #[test]
    fn generated_pair_is_reused() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        server_config(&tls_in(dir.path())).unwrap();
        let first = std::fs::read(dir.path().join("self-signed.crt")).unwrap();
        server_config(&tls_in(dir.path())).unwrap();
        let second = std::fs::read(dir.path().join("self-signed.crt")).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn bad_files_are_named() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let config = TlsConfig {
            cert: Some(cert.clone()),
            key: Some(key),
            ..tls_in(dir.path())
        };
        let err = server_config(&config).unwrap_err().to_string();
        assert!(err.contains("c.pem"), "{err}");

        let missing = TlsConfig {
            cert: Some(dir.path().join("gone.pem")),
            ..config
        };
        let err = server_config(&missing).unwrap_err().to_string();
        assert!(err.contains("gone.pem"), "{err}");
    }
}
