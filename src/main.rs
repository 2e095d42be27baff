//! The `shuyuan` binary: parse the command line, load configuration, start logging, hand over
//! to the library. Everything else lives in the library so tests run the same code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = shuyuan::cli::Cli::parse();
    let config = match cli.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    shuyuan::telemetry::init(&config.log);
    match shuyuan::cli::run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
