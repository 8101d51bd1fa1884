//! The `orthanc-edge` command line: serve | hash-key | check-config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orthanc_edge::{auth, config::Config, state::AppState, telemetry};

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
    /// Print the blake3 hash of an API key, to paste into auth.api_keys.
    HashKey { key: String },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
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
