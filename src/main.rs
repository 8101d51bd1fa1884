//! The `orthanc-edge` command line: serve | warm | hash-key | check-config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orthanc_edge::warm::client::{self, WarmArgs};
use orthanc_edge::{auth, config::Config, state::AppState, telemetry};

/// Where `orthanc-edge warm` finds its API key without `--api-key-file`.
const WARM_KEY_ENV: &str = "ORTHANC_EDGE_WARM_KEY";

/// jemalloc, not glibc malloc: image buffers of every size come and go all day, and glibc's
/// arenas fragment under that until RSS is several times the live heap (see RELIABILITY.md,
/// section 6, soak).
/// Guarded against the JPEG 2000 decoder's null frees (`orthanc_edge::alloc`).
#[global_allocator]
static ALLOC: orthanc_edge::alloc::Guarded = orthanc_edge::alloc::Guarded;

/// jemalloc's options, read once at start-up (`_RJEM_MALLOC_CONF` in the environment still wins):
/// one arena and small thread caches (little memory parked per thread), freed pages given back
/// to the system after 1 s instead of 10 s. Measured by the soak: ~10 MiB less RSS, same hit rate.
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: ConfPtr =
    ConfPtr(c"narenas:1,tcache_max:4096,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads at start-up.
#[repr(transparent)]
struct ConfPtr(*const std::ffi::c_char);
// SAFETY: it points to an immutable, 'static, NUL-terminated byte string.
unsafe impl Sync for ConfPtr {}

#[derive(Parser)]
#[command(name = "orthanc-edge", version, about = "Authorized, cached preview images in front of Orthanc")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge server.
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Warm a running edge's cache for whole studies or series, with a progress bar.
    Warm {
        /// Base URL of the edge, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        /// File holding an API key with the `warm` scope (else the environment's
        /// ORTHANC_EDGE_WARM_KEY).
        #[arg(long)]
        api_key_file: Option<PathBuf>,
        /// An Orthanc study id to warm, every series of it (repeat for more).
        #[arg(long = "study", value_name = "ID")]
        studies: Vec<String>,
        /// An Orthanc series id to warm (repeat for more).
        #[arg(long = "series", value_name = "ID")]
        series: Vec<String>,
        /// A preset of the edge's config to make, e.g. thumb (repeat for more).
        #[arg(long = "preset", value_name = "NAME", required = true)]
        presets: Vec<String>,
    },
    /// Print a session token (or with --link a signed preview URL) minted with the config's
    /// auth.jwt.secret: for trying the browser path (`?token=`, a cookie) by hand.
    Token {
        /// The end user the token names (its `sub`, in audit logs).
        #[arg(long)]
        sub: String,
        /// Restrict the token to this Orthanc study (repeat for more); no list: unrestricted.
        #[arg(long = "study", value_name = "ID")]
        studies: Vec<String>,
        /// Restrict the token to this series (repeat for more).
        #[arg(long = "series", value_name = "ID")]
        series: Vec<String>,
        /// Restrict the token to this instance (repeat for more).
        #[arg(long = "instance", value_name = "ID")]
        instances: Vec<String>,
        /// How long it is valid: 90s, 30m, 1h, 1d (at most auth.jwt.max_lifetime_s).
        #[arg(long)]
        lifetime: Option<String>,
        /// A signed link to this instance's preview instead, at auth.sign.public_url.
        #[arg(long, value_name = "INSTANCE")]
        link: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the blake3 hash of an API key, to paste into auth.api_keys.
    HashKey {
        /// The key; one that starts with '-' is taken as it is.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Warm { url, api_key_file, studies, series, presets } => {
            let run = || -> anyhow::Result<()> {
                let key = match &api_key_file {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                    None => std::env::var(WARM_KEY_ENV).map_err(|_| {
                        anyhow::anyhow!("give --api-key-file, or the key in the environment's {WARM_KEY_ENV}")
                    })?,
                };
                let args = WarmArgs { url, api_key: key.trim().to_owned(), studies, series, presets };
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(client::run(args))
            };
            match run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Token { sub, studies, series, instances, lifetime, link, config } => {
            let args = auth::cli::TokenArgs { sub, studies, series, instances, lifetime, link };
            match load(config.as_deref()).and_then(|cfg| auth::cli::mint(&cfg, &args)) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::HashKey { key } => {
            println!("{}", auth::hash_key(&key));
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config } => match load(config.as_deref()) {
            Ok(cfg) => {
                print!("{}", cfg.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::Serve { config } => match load(config.as_deref()).and_then(run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
    }
}

fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let cfg = Config::load(path)?;
    // A password file that cannot be read is a configuration error too.
    cfg.orthanc_password()?;
    // So are the values whose owners check them (API key scopes, JWT algorithms, presets).
    auth::check_config(&cfg)?;
    orthanc_edge::transform::spec::presets_from_config(&cfg)?;
    Ok(cfg)
}

fn run(cfg: Config) -> anyhow::Result<()> {
    telemetry::init(&cfg.log);
    let state = AppState::build(cfg)?;
    actix_web::rt::System::new().block_on(orthanc_edge::serve(state))
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("orthanc-edge: {e:#}");
    ExitCode::FAILURE
}
