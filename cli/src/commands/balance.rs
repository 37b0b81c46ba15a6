//! `provenant balance` and `provenant transfer`.

use anyhow::Result;
use provenant_client::{runtime, subxt::utils::MultiAddress};
use serde_json::json;

use crate::context::{format_prv, parse_prv, Context};

/// Show an account's balance.
#[derive(Debug, clap::Args)]
pub(crate) struct BalanceCommand {
	/// An SS58 address, a key name, or a dev URI such as `//Alice`.
	account: String,
}

impl BalanceCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let account = context.account(&self.account)?;
		let client = context.connect().await?;
		let info = client
			.at_current_block()
			.await?
			.storage()
			.fetch(runtime::storage().system().account(), (account,))
			.await?
			.decode()?;
		let (free, reserved) = (info.data.free, info.data.reserved);
		context.emit(
			format!("{account}\n  free:     {}\n  reserved: {}", format_prv(free), format_prv(reserved)),
			json!({ "account": account.to_string(), "free": free.to_string(), "reserved": reserved.to_string() }),
		);
		Ok(())
	}
}

/// Send PRV to another account.
#[derive(Debug, clap::Args)]
pub(crate) struct TransferCommand {
	/// The recipient: an SS58 address, a key name, or a dev URI.
	to: String,
	/// The amount in PRV, e.g. `12.5`.
	amount: String,
	/// Who pays: a key name or a dev URI such as `//Alice`.
	#[arg(long)]
	from: String,
}

impl TransferCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let amount = parse_prv(&self.amount)?;
		let to = context.account(&self.to)?;
		let client = context.connect().await?;
		let call =
			runtime::transactions().balances().transfer_keep_alive(MultiAddress::Id(to), amount);
		let events = crate::chain::submit(context, &client, &self.from, &call).await?;
		let block = events.extrinsic_hash();
		context.emit(
			format!("sent {} to {to}", format_prv(amount)),
			json!({ "to": to.to_string(), "amount": amount.to_string(), "extrinsic": format!("{block:?}") }),
		);
		Ok(())
	}
}
