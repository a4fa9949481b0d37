//! Who someone is: password hashing and the random tokens behind links, sessions and invites.

pub mod password;
pub mod rate_limit;
pub mod room_token;
pub mod token;
