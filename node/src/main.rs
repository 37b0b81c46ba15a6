//! The Provenant node: Aura block production, GRANDPA finality, ParityDB and JSON-RPC.

#![warn(missing_docs)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> polkadot_sdk::sc_cli::Result<()> {
	command::run()
}
