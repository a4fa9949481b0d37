//! The `homeroom` command: parses the command line and config, then hands over to the library.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use homeroom::auth::password;
use homeroom::config::Config;
use homeroom::store::users::NewUser;

#[derive(Parser)]
#[command(
    name = "homeroom",
    version,
    about = "Live classrooms and class timelines for one school"
)]
struct Cli {
    /// The configuration file (TOML). Without one, built-in defaults and HOMEROOM_* variables apply.
    #[arg(long, env = "HOMEROOM_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTPS (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration (and TLS files) and exit.
    CheckConfig,
    /// Account helpers for the person running the server.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Load a running server: one publisher, N subscribers; prints figures.
    Loadtest(Box<homeroom::loadtest::LoadTest>),
    /// Seed a database at school scale and measure pages against it; prints figures.
    #[command(subcommand)]
    Bench(homeroom::bench::Bench),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user; the password is read from standard input.
    CreateUser {
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the user a site admin.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password, read from standard input, and sign the user out everywhere.
    ResetPassword {
        #[arg(long)]
        login: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("homeroom: {e}");
            return ExitCode::from(2);
        }
    };
    homeroom::telemetry::init(config.log_format);
    raise_open_files_limit();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(execute(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homeroom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let listener = std::net::TcpListener::bind(config.listen)
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            homeroom::run(config, listener, shutdown_signal()?).await
        }
        Command::Migrate => {
            homeroom::server::open_store(&config).await?.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::CheckConfig => {
            if !config.tls.behind_proxy {
                homeroom::tls::install_crypto_provider();
                homeroom::tls::server_config(&config.tls)?;
            }
            println!("configuration is valid");
            Ok(())
        }
        Command::Admin(admin) => run_admin(admin, config).await,
        Command::Loadtest(args) => homeroom::loadtest::main(*args).await,
        Command::Bench(bench) => homeroom::bench::main(bench).await,
    }
}

async fn run_admin(command: AdminCommand, config: Config) -> anyhow::Result<()> {
    let store = homeroom::server::open_store(&config).await?;
    match command {
        AdminCommand::CreateUser {
            login,
            name,
            email,
            admin,
        } => {
            let login = login.trim().to_lowercase();
            let hash = password::hash(&read_password()?)?;
            let user = store
                .create_user(NewUser {
                    login: &login,
                    display_name: name.trim(),
                    email: email.as_deref(),
                    password_hash: &hash,
                    is_admin: admin,
                    staff_role: None,
                })
                .await
                .map_err(|e| match homeroom::store::is_unique_violation(&e) {
                    true => anyhow::anyhow!("the login {login:?} is taken"),
                    false => e.into(),
                })?;
            println!("created user {} (id {})", user.login, user.id);
        }
        AdminCommand::ResetPassword { login } => {
            let login = login.trim().to_lowercase();
            let Some((user, _)) = store.user_for_login(&login).await? else {
                bail!("no user with login {login:?}");
            };
            let hash = password::hash(&read_password()?)?;
            store.set_password(user.id, &hash, None).await?;
            println!(
                "password of {login} changed; all their sessions are signed out and their feed \
                 links revoked"
            );
        }
    }
    store.close().await;
    Ok(())
}

/// Raises the soft limit on open files to the hard limit. Every participant holds a socket and
/// its peer connections more (UDP, ICE-TCP), and the usual soft limit of 1024 would turn away
/// a full room (or a load test's viewers) long before the configured limits do.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open files limit");
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), soft = limit.rlim_cur, "cannot raise the open files limit");
        return;
    }
    tracing::info!(
        from = limit.rlim_cur,
        to = raised.rlim_cur,
        "raised the open files limit"
    );
}

/// One line from standard input, so scripts can pipe it and people can type it.
fn read_password() -> anyhow::Result<String> {
    eprint!("Password: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Completes on SIGINT or SIGTERM. The handlers are installed now, before anything is
/// served, so a signal that arrives early still shuts down cleanly.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    })
}
