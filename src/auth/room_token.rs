//! Short-lived room tokens: what an open-house guest (who has no account) presents to the
//! signalling socket, and what a standard WHEP player presents to watch one room. Signed with
//! a key kept in the database (`store::keys`), so a token outlives a restart and would be
//! honoured by another node sharing the database.
//!
//! A token names its purpose and its room, and `verify` takes both: a token made for one use
//! or one room is worth nothing anywhere else (a member's viewer token never opens the
//! signalling socket as that member).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An open-house guest's signalling socket (`/api/v1/ws?token=`).
    Guest,
    /// A WHEP player watching one room (`POST /whep/{room_id}`).
    Viewer,
}

/// What a token vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    pub purpose: Purpose,
    pub room_id: i64,
    /// A member's own viewer token names them; a guest's names nobody.
    #[serde(default)]
    pub user_id: Option<i64>,
    pub class_id: i64,
    pub display_name: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// A viewer token's sign-in session (its stored hash, not the cookie): the token dies
    /// with that session, and playback ends when the session does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

pub struct RoomTokens {
    key: [u8; 32],
}

impl RoomTokens {
    /// Tokens signed with the stored key (64 hex digits).
    pub fn from_secret(hex_key: &str) -> anyhow::Result<RoomTokens> {
        let key = hex::decode(hex_key)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("a room-token key is 32 bytes"))?;
        Ok(RoomTokens { key })
    }

    pub fn issue(&self, claims: &RoomClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        format!(
            "{body}.{}",
            URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()))
        )
    }

    /// The claims of a token this process signed for `purpose` that has not expired, and that
    /// names `room_id` when one is given (the signalling socket learns the room only at `join`,
    /// where admission compares it).
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        room_id: Option<i64>,
        now_ms: i64,
    ) -> Option<RoomClaims> {
        let (body, signature) = token.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let claims: RoomClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        let fits = claims.purpose == purpose && room_id.is_none_or(|id| id == claims.room_id);
        (fits && claims.expires_at > now_ms).then_some(claims)
    }

    fn mac(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random() -> RoomTokens {
        RoomTokens::from_secret(&hex::encode(rand::random::<[u8; 32]>())).unwrap()
    }

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let tokens = random();
        let claims = RoomClaims {
            purpose: Purpose::Guest,
            room_id: 1,
            user_id: None,
            class_id: 2,
            display_name: "Guest".into(),
            expires_at: 1000,
            session: None,
        };
        let token = tokens.issue(&claims);
        let verify = |token: &str, now| tokens.verify(token, Purpose::Guest, None, now);
        assert_eq!(verify(&token, 999), Some(claims.clone()));
        assert_eq!(verify(&token, 1000), None, "expired");
        assert_eq!(
            tokens.verify(&token, Purpose::Guest, Some(1), 0),
            Some(claims.clone())
        );
        assert_eq!(
            tokens.verify(&token, Purpose::Viewer, Some(1), 0),
            None,
            "another purpose"
        );
        assert_eq!(
            tokens.verify(&token, Purpose::Guest, Some(3), 0),
            None,
            "another room"
        );
        let forged = RoomClaims {
            room_id: 9,
            ..claims
        };
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let signature = token.split_once('.').unwrap().1;
        assert_eq!(verify(&format!("{forged_body}.{signature}"), 0), None);
        assert_eq!(
            random().verify(&token, Purpose::Guest, None, 0),
            None,
            "another deployment's key"
        );
    }
}
