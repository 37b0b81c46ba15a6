//! `provenant validator bond|unbond|withdraw|status|auto`: staking on quality checks, and the
//! worker that judges by itself ([`auto`]).

mod auto;

use anyhow::Result;
use provenant_client::{runtime, Client};
use serde_json::json;

use crate::{
	chain::{self, submit},
	context::{format_prv, parse_prv, Context},
};

/// Stake on quality checks.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Hold stake and choose the datanets to judge. The minimum is per datanet.
	Bond(BondArgs),
	/// Stop voting with some stake; it can be withdrawn after the unbonding delay.
	Unbond(UnbondArgs),
	/// Release unbonded stake whose delay has passed.
	Withdraw(WithdrawArgs),
	/// Judge the files of every datanet served (or those named) automatically: fetch, check
	/// (decoding, length, structure, near-duplicates), vote with a reason, reveal and close.
	/// Runs until stopped.
	Auto(auto::AutoArgs),
	/// A validator's stake and datanets, and the published rules.
	Status(StatusArgs),
}

/// Options for `validator bond`.
#[derive(Debug, clap::Args)]
pub(crate) struct BondArgs {
	/// A datanet to serve; repeat for several.
	#[arg(long = "datanet", required = true)]
	datanets: Vec<u32>,
	/// PRV to add to the bond, for example `150` or `0.5`; 0 only changes the datanets.
	#[arg(long)]
	amount: String,
	/// The validator's key: a keystore name or a dev URI such as `//Charlie`.
	#[arg(long)]
	from: String,
}

/// Options for `validator unbond`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnbondArgs {
	/// PRV to unbond.
	#[arg(long)]
	amount: String,
	/// The validator's key.
	#[arg(long)]
	from: String,
}

/// Options for `validator withdraw`.
#[derive(Debug, clap::Args)]
pub(crate) struct WithdrawArgs {
	/// The validator's key.
	#[arg(long)]
	from: String,
}

/// Options for `validator status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
	/// A keystore name, SS58 address or dev URI.
	who: String,
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		match self {
			Command::Bond(args) => args.execute(context, &context.connect().await?).await,
			Command::Unbond(args) => args.execute(context, &context.connect().await?).await,
			Command::Withdraw(args) => args.execute(context, &context.connect().await?).await,
			Command::Auto(args) => args.execute(context).await,
			Command::Status(args) => args.execute(context, &context.connect().await?).await,
		}
	}
}

impl BondArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let amount = parse_prv(&self.amount)?;
		let call = runtime::transactions().validation().bond(self.datanets.clone(), amount);
		submit(context, client, &self.from, &call).await?;
		context.emit(
			format!("bonded {} more; serving datanets {:?}", format_prv(amount), self.datanets),
			json!({ "bonded": amount.to_string(), "datanets": self.datanets }),
		);
		Ok(())
	}
}

impl UnbondArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let amount = parse_prv(&self.amount)?;
		let call = runtime::transactions().validation().unbond(amount);
		let events = submit(context, client, &self.from, &call).await?;
		let unlocks_at = events
			.find_first::<runtime::validation::events::Unbonded>()
			.transpose()?
			.map(|event| event.unlocks_at);
		context.emit(
			format!(
				"unbonding {}; withdraw from block #{}",
				format_prv(amount),
				unlocks_at.unwrap_or_default()
			),
			json!({ "unbonding": amount.to_string(), "unlocksAt": unlocks_at }),
		);
		Ok(())
	}
}

impl WithdrawArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let call = runtime::transactions().validation().withdraw();
		let events = submit(context, client, &self.from, &call).await?;
		let amount = events
			.find_first::<runtime::validation::events::Withdrawn>()
			.transpose()?
			.map(|event| event.amount)
			.unwrap_or_default();
		context.emit(
			format!("withdrew {}", format_prv(amount)),
			json!({ "withdrawn": amount.to_string() }),
		);
		Ok(())
	}
}

impl StatusArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let account = context.account(&self.who)?;
		let rules = chain::validation_params(client).await?;
		let record = client
			.at_current_block()
			.await?
			.storage()
			.try_fetch(runtime::storage().validation().validators(), (account,))
			.await?
			.map(|value| value.decode())
			.transpose()?;
		let (bonded, unbonding, unlocks_at, datanets) = match &record {
			Some(v) => (v.bonded, v.unbonding, v.unlocks_at, v.datanets.0.clone()),
			None => (0, 0, 0, Vec::new()),
		};
		let minimum = rules.min_stake_per_datanet * datanets.len() as u128;
		let human = format!(
			"validator {account}\n  bonded     {}\n  unbonding  {}{}\n  datanets   {datanets:?}\n  \
			 minimum    {} ({} per datanet){}",
			format_prv(bonded),
			format_prv(unbonding),
			if unbonding > 0 { format!(" (withdraw from block #{unlocks_at})") } else { String::new() },
			format_prv(minimum),
			format_prv(rules.min_stake_per_datanet),
			if record.is_some() && bonded < minimum { "\n  UNDER-STAKED: cannot vote" } else { "" },
		);
		context.emit(
			human,
			json!({
				"account": account.to_string(),
				"bonded": bonded.to_string(),
				"unbonding": unbonding.to_string(),
				"unlocksAt": unlocks_at,
				"datanets": datanets,
				"canVote": record.is_some() && bonded > 0 && bonded >= minimum,
			}),
		);
		Ok(())
	}
}
