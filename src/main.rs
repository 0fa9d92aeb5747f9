//! The `picshelf` command: settings → telemetry → the web application.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use picshelf::config::{Environment, Settings, Sources};
use picshelf::{telemetry, web};

/// A self-hosted image upload service.
///
/// Environment: PICSHELF_ENV=dev|test|prod picks config/<env>.toml;
/// PICSHELF__SECTION__KEY=value overrides any key (e.g. PICSHELF__SERVER__PORT=9000).
#[derive(Parser)]
#[command(name = "picshelf", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Print the effective settings, secrets redacted.
    Config,
}

fn load_settings() -> anyhow::Result<Settings> {
    let environment = Environment::from_env()?;
    Ok(Settings::load(environment, &Sources::from_env())?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match load_settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("picshelf: {e:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            print!("{}", settings.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Command::Serve => {
            if let Err(e) = telemetry::init(&settings.log) {
                eprintln!("picshelf: {e:#}");
                return ExitCode::FAILURE;
            }
            match web::serve(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "picshelf failed");
                    eprintln!("picshelf: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
