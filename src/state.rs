//! The one state value every handler gets: cheap handles, cloned per request.

use std::sync::Arc;

use crate::auth::password::Hasher;
use crate::auth::rate_limit::RateLimits;
use crate::auth::room_token::RoomTokens;
use crate::config::Config;
use crate::events::ClassEvents;
use crate::metrics::Metrics;
use crate::sfu::Sfu;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub rate_limits: Arc<RateLimits>,
    /// Bounds concurrent argon2 work (memory and CPU) for every password hash and check.
    pub hasher: Arc<Hasher>,
    pub room_tokens: Arc<RoomTokens>,
    pub sfu: Sfu,
    /// Where pages report the posts they showed (written in batches in the background).
    pub seen: crate::store::post_views::SeenWriter,
    /// What open class pages are told (sessions starting and ending, posts, comments).
    pub events: ClassEvents,
    /// Encoders publishing over WHIP.
    pub whip: Arc<crate::http::whip::WhipSessions>,
    /// Players watching over WHEP.
    pub whep: Arc<crate::http::whep::WhepSessions>,
    /// Connection checks running (`/check`), bounded in total and per person.
    pub checks: Arc<crate::sfu::check::Checks>,
    /// Guest signalling sockets open per IP address.
    pub guest_slots: Arc<crate::signal::guests::GuestSlots>,
    /// Web Push and email: queues notifications for the delivery worker.
    pub notify: crate::notify::Notifier,
    /// The base of every link we hand out (invites, set-up, feeds).
    pub public_url: url::Url,
    /// The built-in TURN relay, when `[turn] enabled`.
    pub turn: Option<Arc<crate::turn::Turn>>,
}
