//! The `picshelf` command: settings → telemetry → the web application.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use picshelf::config::{Environment, Settings, Sources};
use picshelf::{check_store, telemetry, web};

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
    /// Check that the store is reachable and writable with these settings:
    /// write, read back, range-read and delete a probe; report addressing,
    /// region, checksums, proxy, lifecycle rules and clock skew.
    CheckStore,
    /// Print the API's OpenAPI 3.1 document (what /main/openapi.json serves).
    Openapi,
}

fn load_settings() -> anyhow::Result<Settings> {
    let environment = Environment::from_env()?;
    Ok(Settings::load(environment, &Sources::from_env())?)
}

fn main() -> ExitCode {
    picshelf::allocator::return_large_buffers_to_the_system();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", web::openapi::json());
        return ExitCode::SUCCESS;
    }
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
        Command::Openapi => unreachable!("answered before the settings are read"),
        Command::CheckStore => {
            let report = check_store::run(&settings);
            for line in &report.lines {
                println!("{line}");
            }
            match report.failure {
                None => ExitCode::SUCCESS,
                Some(failure) => {
                    eprintln!("picshelf check-store: {failure}");
                    ExitCode::FAILURE
                }
            }
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
