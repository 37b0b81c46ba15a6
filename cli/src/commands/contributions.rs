//! `provenant contributions [--mine] [--datanet N]`: where each contribution stands.

use anyhow::{bail, Result};
use provenant_client::{
	runtime::{self, runtime_types::pallet_datanets::types::ContributionStatus},
	subxt::utils::AccountId32,
};
use serde_json::json;

use crate::context::Context;

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

pub(crate) fn status_name(status: &ContributionStatus) -> &'static str {
	match status {
		ContributionStatus::Pending => "pending",
		ContributionStatus::Accepted => "accepted",
		ContributionStatus::Rejected => "rejected",
		ContributionStatus::Expired => "expired",
	}
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let mine = match (&self.from, self.mine) {
			(Some(from), true) => Some(context.account(from)?),
			(None, true) => bail!("--mine needs --from to say whose"),
			_ => None,
		};
		let client = context.connect().await?;
		let at = client.at_current_block().await?;
		let mut entries =
			at.storage().iter(runtime::storage().datanets().contributions(), ()).await?;
		let mut rows = Vec::new();
		while let Some(entry) = entries.next().await {
			let entry = entry?;
			let (id,) = entry.key()?.decode()?;
			let record = entry.value().decode()?;
			let contributor = AccountId32::from(record.contributor.0);
			if self.datanet.is_some_and(|d| d != record.datanet)
				|| mine.as_ref().is_some_and(|m| *m != contributor)
			{
				continue;
			}
			rows.push((id, record, contributor));
		}
		rows.sort_by_key(|(id, ..)| *id);
		// The reason behind each rejection, from validation's verdicts.
		let mut reasons = std::collections::HashMap::new();
		let mut verdicts =
			at.storage().iter(runtime::storage().validation().verdicts(), ()).await?;
		while let Some(entry) = verdicts.next().await {
			let entry = entry?;
			let (id,) = entry.key()?.decode()?;
			if let Some(reason) = entry.value().decode()?.reason {
				reasons.insert(id, super::validator::from_chain(&reason).name());
			}
		}
		let status_of = |id: &u64, status: &ContributionStatus| match reasons.get(id) {
			Some(reason) => format!("{} ({reason})", status_name(status)),
			None => status_name(status).to_string(),
		};
		let human = if rows.is_empty() {
			"no contributions match".to_string()
		} else {
			rows.iter()
				.map(|(id, record, contributor)| {
					format!(
						"#{id:<6} datanet {:<4} {:<18} {:<5} {:>9} bytes  0x{}  {contributor}",
						record.datanet,
						status_of(id, &record.status),
						format!("{:?}", record.format).to_lowercase(),
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
					"status": status_name(&record.status),
					"reason": reasons.get(id),
					"format": format!("{:?}", record.format).to_lowercase(),
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
