//! Serving: opens the store, builds the state, and runs the HTTPS server until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;

use crate::auth::room_token::RoomTokens;
use crate::auth::token;
use crate::config::Config;
use crate::events::ClassEvents;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::sfu::media_port::tcp::IceTcpSplit;
use crate::sfu::Sfu;
use crate::state::AppState;
use crate::store::post_views::SeenWriter;
use crate::store::Store;
use crate::{http, recording, tls};

/// In-flight requests get this long after a shutdown signal; the process is gone within 5 s.
const DRAIN: Duration = Duration::from_secs(4);

/// Serves until `shutdown` completes, then drains requests and closes the database.
pub async fn run(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tls::install_crypto_provider();
    // Load TLS first: a bad certificate is a configuration error and must stop us before
    // anything else happens.
    let tls_config = match config.tls.behind_proxy {
        true => None,
        false => Some(tls::server_config(&config.tls)?),
    };
    let store = open_store(&config).await?;
    let bound = listener.local_addr()?;
    let public_url = config.public_url(bound);
    announce_setup_link(&store, &public_url).await?;

    // Files a crash left half-written are never finished: delete them before serving.
    let leftovers = http::remove_crash_leftovers(&config.data_dir)
        .context("cannot clean the data directory's tmp folder")?;
    if leftovers > 0 {
        tracing::warn!(leftovers, "deleted partial files left by an earlier crash");
    }
    let closed = store.close_orphaned_sessions().await?;
    if closed > 0 {
        tracing::warn!(closed, "closed live sessions left open by an earlier crash");
    }
    let rendered = http::render_missing_html(&store)
        .await
        .map_err(|e| anyhow::anyhow!("cannot render stored posts: {e}"))?;
    if rendered > 0 {
        tracing::info!(rendered, "rendered posts written before HTML was stored");
    }
    let room_key = store
        .shared_secret("room_tokens", &hex::encode(rand::random::<[u8; 32]>()))
        .await?;
    let room_tokens = RoomTokens::from_secret(&room_key).context("the stored room-token key")?;
    let purge = spawn_purge(store.clone());
    let seen = SeenWriter::start(store.clone());
    let metrics = Arc::new(Metrics::default());
    let events = ClassEvents::default();
    if config.media.udp_ports.is_some() {
        tracing::warn!(
            "[media] udp_ports is no longer used: all media shares one port ([media] port, \
             by default the HTTPS port's number); remove it from the config file"
        );
    }
    let sfu = Sfu::new(
        &config,
        bound,
        store.clone(),
        metrics.clone(),
        events.clone(),
    )?;
    let turn = crate::turn::Turn::start(
        &config,
        &store,
        &public_url,
        sfu.media().relays.clone(),
        sfu.media().port().local_addr().port(),
    )
    .await?
    .map(Arc::new);
    let ice_tcp = IceTcpSplit {
        port: sfu.media().port().clone(),
    };
    // Recordings a crash interrupted become playable files before anyone can ask for them.
    let root = sfu.recorder().root().to_owned();
    let recovered = recording::finalise::recover(&store, &root)
        .await
        .context("cannot finalise the recordings an earlier run left unfinished")?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "finalised recordings left unfinished by an earlier run"
        );
    }
    recording::retention::spawn(store.clone(), root, config.recording.clone());
    let notify = Notifier::new(&config, store.clone(), &public_url)?;
    let tap = events.tap();
    let state = AppState {
        config: Arc::new(config.clone()),
        store: store.clone(),
        metrics,
        rate_limits: Arc::default(),
        hasher: Arc::default(),
        room_tokens: Arc::new(room_tokens),
        sfu: sfu.clone(),
        events: events.clone(),
        seen: seen.clone(),
        whip: Arc::default(),
        whep: Arc::default(),
        checks: Arc::new(crate::sfu::check::Checks::new(
            config.limits.max_connection_checks,
        )),
        guest_slots: Arc::new(crate::signal::guests::GuestSlots::new(
            config.limits.max_guests_per_ip,
        )),
        notify: notify.clone(),
        public_url: public_url.clone(),
        turn: turn.clone(),
    };
    // Queued notifications left by an earlier run go out now; new ones as events come.
    notify.start(&config.notify);
    tokio::spawn(crate::notify::fanout::run(state.clone(), tap));
    tokio::spawn(crate::notify::digest::run(state.clone()));
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();

    let handle = Handle::new();
    let redirect = match config.tls.redirect_from {
        Some(addr) if tls_config.is_some() => {
            Some(spawn_redirect(addr, public_url.clone(), handle.clone())?)
        }
        _ => None,
    };
    tokio::spawn({
        let handle = handle.clone();
        let sfu = sfu.clone();
        let events = events.clone();
        let turn = turn.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down");
            // Live sessions end first: their sockets close and their logs are written, so
            // the HTTP drain below only waits for ordinary requests. Class pages' event
            // streams end too (they would otherwise stay open until the drain timeout).
            sfu.shutdown().await;
            if let Some(turn) = &turn {
                turn.close().await;
            }
            events.close();
            handle.graceful_shutdown(Some(DRAIN));
        }
    });

    listener.set_nonblocking(true)?;
    println!("Homeroom is serving on {bound}; open {public_url}");
    tracing::info!(%bound, "serving");
    match tls_config {
        Some(tls_config) => {
            let tls = RustlsAcceptor::new(RustlsConfig::from_config(tls_config)).acceptor(ice_tcp);
            axum_server::from_tcp(listener)
                .acceptor(tls)
                .handle(handle)
                .serve(app)
                .await?
        }
        None => {
            axum_server::from_tcp(listener)
                .acceptor(ice_tcp)
                .handle(handle)
                .serve(app)
                .await?
        }
    }
    if let Some(redirect) = redirect {
        let _ = redirect.await;
    }
    sfu.flush_log().await;
    seen.flush().await;
    purge.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often expired sessions, links and tokens are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Purges what expired now and then every `PURGE_EVERY`; a failure is logged and tried again
/// at the next turn.
fn spawn_purge(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            match store.purge_expired(crate::store::now_ms()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired sessions, links and tokens"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    })
}

/// Connects and migrates; used by `serve` and by the `migrate` command.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let node_id = match &config.node_id {
        Some(id) => id.clone(),
        None => gethostname::gethostname().to_string_lossy().into_owned(),
    };
    let store = Store::connect(&config.database_url())
        .await
        .context("cannot open the database")?
        .with_node_id(&node_id);
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

/// While no admin exists, every start prints a fresh one-time link that creates the first one.
/// It goes to standard output, not the log: it is a secret meant for the person at the console.
async fn announce_setup_link(store: &Store, public_url: &url::Url) -> anyhow::Result<()> {
    if store.admin_exists().await? {
        return Ok(());
    }
    let secret = token::new_secret();
    store.create_setup_token(&token::hash(&secret)).await?;
    let mut link = public_url.join("setup").expect("valid path");
    link.set_fragment(Some(&secret));
    println!("No admin account yet. Create one within 24 hours at: {link}");
    Ok(())
}

/// A plain-HTTP listener that sends every request to the same path over HTTPS.
fn spawn_redirect(
    addr: SocketAddr,
    public_url: url::Url,
    handle: Handle,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let public_url = public_url.clone();
        async move {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            match public_url.join(path) {
                Ok(target) => Redirect::permanent(target.as_str()).into_response(),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        }
    });
    Ok(tokio::spawn(async move {
        if let Err(e) = axum_server::from_tcp(listener)
            .handle(handle)
            .serve(app.into_make_service())
            .await
        {
            tracing::error!(error = %e, "redirect listener failed");
        }
    }))
}
