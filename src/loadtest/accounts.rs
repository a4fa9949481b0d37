//! How the load tool signs in: the teacher and a family with a password, guests with an
//! open-house link's code.

use anyhow::{bail, Context};

use super::joins::Refusal;

fn https_client(pem: &[u8]) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem)?)
        .use_rustls_tls()
        .build()?)
}

/// A guest's room token for the open house of the guest link `code`; a refusal is named
/// as a join's (`http_429` when the server takes no more guests from this address).
pub(super) async fn guest_token(
    server: &str,
    code: &str,
    index: usize,
    pem: &[u8],
) -> Result<String, Refusal> {
    let client = https_client(pem).map_err(|e| Refusal::new("connect", e))?;
    let response = client
        .post(format!("{server}/api/v1/guest-token"))
        .json(&serde_json::json!({"code": code, "display_name": format!("Load guest {index}")}))
        .send()
        .await
        .map_err(|e| Refusal::new("connect", e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Refusal::new(
            format!("http_{}", status.as_u16()),
            format_args!("guest token refused: {status}"),
        ));
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| Refusal::new("unexpected_reply", e))?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Refusal::new("unexpected_reply", "no token in the guest-token answer"))
}

/// Signs in and returns the session cookie's value.
pub(super) async fn sign_in(
    server: &str,
    login: &str,
    password: &str,
    pem: &[u8],
) -> anyhow::Result<String> {
    let response = https_client(pem)?
        .post(format!("{}/api/v1/session", server.trim_end_matches('/')))
        .json(&serde_json::json!({"login": login, "password": password}))
        .send()
        .await
        .context("cannot reach the server")?;
    if !response.status().is_success() {
        bail!("sign-in refused: {}", response.status());
    }
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix("homeroom_session=")
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
        .context("no session cookie in the sign-in answer")
}
