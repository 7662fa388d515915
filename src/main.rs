//! The `latchkey` binary: parses the command line and hands over to `cli::run`.
//!
//! Floor: entry (docs/architecture.md); names everything; nothing names it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    latchkey::cli::run(latchkey::cli::Cli::parse())
}
