use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    latchkey::cli::run(latchkey::cli::Cli::parse())
}
