//! `picshelf` serves; `picshelf config` prints the effective settings.

use std::process::ExitCode;

use picshelf::config::{Environment, Settings, Sources};
use picshelf::startup::Application;
use picshelf::telemetry;

const USAGE: &str = "usage: picshelf [serve | config]

  serve    run the service (the default)
  config   print the effective settings, secrets redacted

Environment: PICSHELF_ENV=dev|test|prod picks config/<env>.toml;
PICSHELF__SECTION__KEY=value overrides any key (e.g. PICSHELF__SERVER__PORT=9000).";

fn load_settings() -> anyhow::Result<Settings> {
    let environment = Environment::from_env()?;
    Ok(Settings::load(environment, &Sources::from_env())?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log)?;
    Application::build(settings).await?.run_until_stopped().await?;
    Ok(())
}

#[actix_web::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    let settings = match command.as_deref() {
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        None | Some("serve" | "config") => load_settings(),
        Some(other) => {
            eprintln!("picshelf: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("picshelf: {e:#}");
            return ExitCode::from(2);
        }
    };
    if command.as_deref() == Some("config") {
        print!("{}", settings.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "picshelf failed");
            eprintln!("picshelf: {e:#}");
            ExitCode::FAILURE
        }
    }
}
