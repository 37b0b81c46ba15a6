//! `provenant leaderboard`, `rewards`, `claim` and `fund`: rankings by acceptance rate, what an
//! account has earned, and paying rewards into the wallet.

use anyhow::{anyhow, Context as _, Result};
use provenant_client::{runtime, subxt::rpcs::rpc_params};
use serde::Deserialize;
use serde_json::json;

use crate::{
	chain::submit,
	context::{format_prv, parse_prv, Context},
};

/// A datanet's contributors ranked by the lower bound of their acceptance rate.
#[derive(Debug, clap::Args)]
pub(crate) struct LeaderboardCommand {
	/// The datanet's number.
	datanet: u32,
	/// How many rows to show (1–1000).
	#[arg(long, default_value_t = 20)]
	limit: u32,
	/// Start after this contributor (an SS58 address, keystore name or dev URI): the next page
	/// after one that ended with it.
	#[arg(long)]
	after: Option<String>,
}

/// An account's claimable rewards and its rank in each datanet.
#[derive(Debug, clap::Args)]
pub(crate) struct RewardsCommand {
	/// A keystore name, SS58 address or dev URI.
	who: String,
}

/// Pay everything credited to an account into its wallet.
#[derive(Debug, clap::Args)]
pub(crate) struct ClaimCommand {
	/// The account's key.
	#[arg(long)]
	from: String,
}

/// Add PRV to a datanet's reward pool; it is paid out with the datanet's next active epoch.
#[derive(Debug, clap::Args)]
pub(crate) struct FundCommand {
	/// The datanet's number.
	datanet: u32,
	/// PRV to add, for example `500` or `0.5`.
	#[arg(long)]
	amount: String,
	/// Who pays.
	#[arg(long)]
	from: String,
}

/// A row of `rewards_leaderboard` or of a standing, as the node serves it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rank {
	rank: u32,
	account: Option<String>,
	datanet: Option<u32>,
	accepted: u32,
	rejected: f64,
	score: f64,
	score_ppb: u32,
	earned: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Standing {
	claimable: String,
	by_source: BySource,
	datanets: Vec<Rank>,
}

/// Claimable rewards by what earned them, as `rewards_standing` gives them.
#[derive(Debug, Deserialize)]
struct BySource {
	contributions: String,
	validation: String,
	ownership: String,
	training: String,
	inference: String,
}

impl BySource {
	/// Each source with its amount, in the order the chain lists them.
	fn amounts(&self) -> Result<Vec<(&'static str, u128)>> {
		[
			("contributions", &self.contributions),
			("validation", &self.validation),
			("ownership", &self.ownership),
			("training", &self.training),
			("inference", &self.inference),
		]
		.into_iter()
		.map(|(source, amount)| Ok((source, plancks(amount)?)))
		.collect()
	}
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Epoch {
	epoch: u32,
	started_at: u32,
	length: u32,
	unsettled: u32,
}

fn plancks(text: &str) -> Result<u128> {
	text.parse().with_context(|| format!("the node sent '{text}' as an amount"))
}

fn rank_json(row: &Rank) -> Result<serde_json::Value> {
	Ok(json!({
		"rank": row.rank,
		"account": row.account,
		"datanet": row.datanet,
		"accepted": row.accepted,
		"rejected": row.rejected,
		"score": row.score,
		"scorePpb": row.score_ppb,
		"earned": plancks(&row.earned)?.to_string(),
	}))
}

async fn epoch(rpc: &provenant_client::subxt::rpcs::RpcClient) -> Result<Epoch> {
	Ok(rpc.request("rewards_epoch", rpc_params![]).await?)
}

fn epoch_line(epoch: &Epoch) -> String {
	let next = epoch.started_at + epoch.length;
	let pending = if epoch.unsettled < epoch.epoch {
		format!("; epoch {} is still being paid out", epoch.unsettled)
	} else {
		String::new()
	};
	format!("epoch {} (ends at block #{next}){pending}", epoch.epoch)
}

impl LeaderboardCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let after = self.after.as_deref().map(|who| context.account(who)).transpose()?;
		let rpc = provenant_client::rpc_client(&context.url).await?;
		let rows: Vec<Rank> = rpc
			.request(
				"rewards_leaderboard",
				rpc_params![self.datanet, self.limit, after.map(|a| a.to_string())],
			)
			.await
			.context("reading the leaderboard")?;
		// A full page may have more after it; the last account is where the next one starts.
		let next = (rows.len() == self.limit as usize)
			.then(|| rows.last().and_then(|row| row.account.clone()))
			.flatten();
		let epoch = epoch(&rpc).await?;
		let mut human = format!("datanet {} leaderboard, {}\n", self.datanet, epoch_line(&epoch));
		if rows.is_empty() {
			human.push_str(if self.after.is_some() { "no more rows" } else { "no verdicts yet" });
		} else {
			human.push_str("rank  score   accepted  rejected  earned            account");
			for row in &rows {
				human.push_str(&format!(
					"\n{:<5} {:.4}  {:<9} {:<9.2} {:<17} {}",
					row.rank,
					row.score,
					row.accepted,
					row.rejected,
					format_prv(plancks(&row.earned)?),
					row.account.as_deref().unwrap_or_default(),
				));
			}
		}
		if let Some(next) = &next {
			human.push_str(&format!(
				"\nnext page: provenant leaderboard {} --limit {} --after {next}",
				self.datanet, self.limit
			));
		}
		let json_rows = rows.iter().map(rank_json).collect::<Result<Vec<_>>>()?;
		context.emit(
			human,
			json!({ "datanet": self.datanet, "epoch": epoch.epoch, "rows": json_rows, "next": next }),
		);
		Ok(())
	}
}

impl RewardsCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let account = context.account(&self.who)?;
		let rpc = provenant_client::rpc_client(&context.url).await?;
		let standing: Standing = rpc
			.request("rewards_standing", rpc_params![account.to_string()])
			.await
			.context("reading the account's rewards")?;
		let epoch = epoch(&rpc).await?;
		let claimable = plancks(&standing.claimable)?;
		let by_source = standing.by_source.amounts()?;
		let earned_by: Vec<String> = by_source
			.iter()
			.filter(|(_, amount)| *amount > 0)
			.map(|(source, amount)| format!("{} from {source}", format_prv(*amount)))
			.collect();
		let mut human = format!(
			"account {account}\n  claimable  {}{}{}\n  {}",
			format_prv(claimable),
			if earned_by.is_empty() {
				String::new()
			} else {
				format!(": {}", earned_by.join(", "))
			},
			if claimable > 0 { " (`provenant claim` pays it out)" } else { "" },
			epoch_line(&epoch),
		);
		for row in &standing.datanets {
			human.push_str(&format!(
				"\n  datanet {:<4} rank {:<4} score {:.4}  accepted {}  rejected {:.2}  earned {}",
				row.datanet.unwrap_or_default(),
				row.rank,
				row.score,
				row.accepted,
				row.rejected,
				format_prv(plancks(&row.earned)?),
			));
		}
		let rows = standing.datanets.iter().map(rank_json).collect::<Result<Vec<_>>>()?;
		context.emit(
			human,
			json!({
				"account": account.to_string(),
				"claimable": claimable.to_string(),
				"bySource": by_source
					.iter()
					.map(|(source, amount)| (source.to_string(), json!(amount.to_string())))
					.collect::<serde_json::Map<_, _>>(),
				"epoch": epoch.epoch,
				"datanets": rows,
			}),
		);
		Ok(())
	}
}

impl ClaimCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		let events =
			submit(context, &client, &self.from, &runtime::transactions().rewards().claim())
				.await
				.context("claiming rewards")?;
		let amount = events
			.find_first::<runtime::rewards::events::Claimed>()
			.ok_or_else(|| anyhow!("the chain reported no claim"))??
			.amount;
		context.emit(
			format!("claimed {}", format_prv(amount)),
			json!({ "claimed": amount.to_string() }),
		);
		Ok(())
	}
}

impl FundCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let amount = parse_prv(&self.amount)?;
		let client = context.connect().await?;
		let call = runtime::transactions().rewards().fund(self.datanet, amount);
		submit(context, &client, &self.from, &call).await.context("funding the pool")?;
		context.emit(
			format!("added {} to datanet {}'s reward pool", format_prv(amount), self.datanet),
			json!({ "datanet": self.datanet, "funded": amount.to_string() }),
		);
		Ok(())
	}
}
