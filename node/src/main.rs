//! The Provenant node: Aura block production, GRANDPA finality, ParityDB and JSON-RPC.

#![warn(missing_docs)]
// `sc_cli::Error`, the error type of Substrate's command and service APIs, is large; the node
// returns it as those APIs do.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> polkadot_sdk::sc_cli::Result<()> {
	command::run()
}
