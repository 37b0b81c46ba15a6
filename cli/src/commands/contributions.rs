//! `provenant contributions [--mine] [--datanet N]`: where each contribution stands.

use anyhow::{bail, Result};
use provenant_client::{runtime, subxt::utils::AccountId32};
use serde_json::json;

use crate::{
	chain::{self, contribution_status_name},
	context::Context,
};

/// List contributions.
#[derive(Debug, clap::Args)]
pub(crate) struct Command {
	/// Only those of this datanet.
	#[arg(long)]
	datanet: Option<u32>,
	/// Only mine; needs `--from`.
	#[arg(long, requires = "from")]
	mine: bool,
	/// Whose are "mine": a key name, address or dev URI.
	#[arg(long)]
	from: Option<String>,
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let mine = match (&self.from, self.mine) {
			(Some(from), true) => Some(context.account(from)?),
			(None, true) => bail!("--mine needs --from to say whose"),
			_ => None,
		};
		let client = context.connect().await?;
		let rows: Vec<_> = chain::all(&client, runtime::storage().datanets().contributions())
			.await?
			.into_iter()
			.map(|(id, record)| {
				let contributor = AccountId32::from(record.contributor.0);
				(id, record, contributor)
			})
			.filter(|(_, record, contributor)| {
				self.datanet.is_none_or(|d| d == record.datanet)
					&& mine.as_ref().is_none_or(|m| m == contributor)
			})
			.collect();
		// The reason behind each rejection, from validation's verdicts.
		let reasons: std::collections::HashMap<u64, &str> =
			chain::all(&client, runtime::storage().validation().verdicts())
				.await?
				.into_iter()
				.filter_map(|(id, verdict)| Some((id, verdict.reason?.name())))
				.collect();
		let status_of = |id: &u64, status| match reasons.get(id) {
			Some(reason) => format!("{} ({reason})", contribution_status_name(status)),
			None => contribution_status_name(status).to_string(),
		};
		let human = if rows.is_empty() {
			"no contributions match".to_string()
		} else {
			rows.iter()
				.map(|(id, record, contributor)| {
					format!(
						"#{id:<6} datanet {:<4} {:<18} {:<5} {:>9} bytes  0x{}  {contributor}",
						record.datanet,
						status_of(id, record.status.0),
						record.format.name(),
						record.size,
						hex::encode(record.hash),
					)
				})
				.collect::<Vec<_>>()
				.join("\n")
		};
		let json: Vec<_> = rows
			.iter()
			.map(|(id, record, contributor)| {
				json!({
					"contribution": id,
					"datanet": record.datanet,
					"status": contribution_status_name(record.status.0),
					"reason": reasons.get(id),
					"format": record.format.name(),
					"size": record.size,
					"hash": format!("0x{}", hex::encode(record.hash)),
					"contributor": contributor.to_string(),
					"block": record.block,
				})
			})
			.collect();
		context.emit(human, json!(json));
		Ok(())
	}
}
