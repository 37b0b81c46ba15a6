//! `provenant`: the wallet and command line for contributors, validators, model builders and
//! consumers of the Provenant chain.
//!
//! Each subcommand lives in its own module under `commands/`, with a clap `Command` and an
//! `execute`. Output is for people by default and JSON with `--json`.

mod chain;
mod commands;
mod context;
mod keystore;
mod votes;

use clap::Parser;

/// The Provenant wallet and command line.
#[derive(Debug, Parser)]
#[command(name = "provenant", version, about)]
struct Cli {
	#[command(flatten)]
	global: context::GlobalArgs,

	#[command(subcommand)]
	command: commands::Command,
}

#[tokio::main]
async fn main() {
	let cli = Cli::parse();
	let context = context::Context::new(cli.global);
	if let Err(err) = cli.command.execute(&context).await {
		if context.json {
			println!("{}", serde_json::json!({ "error": format!("{err:#}") }));
		} else {
			eprintln!("error: {err:#}");
		}
		std::process::exit(1);
	}
}
