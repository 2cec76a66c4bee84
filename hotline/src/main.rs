//! The `hotline` command. See `hotline --help` and the README.

use std::process::ExitCode;

use clap::Parser;
use hotline::cli::{self, Cli};
use hotline::config::{Config, LogFormat};

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(config.log.effective_filter())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(result) = cli::run_without_config(&cli) {
        return finish(result);
    }
    let config = match cli.load_config() {
        Ok(c) => c,
        Err(f) => return finish(Err(f)),
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return finish(Err(hotline::fail::Failure::runtime(e))),
    };
    finish(runtime.block_on(cli::run(cli, config)))
}

fn finish(result: Result<(), hotline::fail::Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("hotline: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
