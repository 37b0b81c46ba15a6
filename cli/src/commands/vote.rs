//! `provenant vote` and `provenant close`: judging one contribution by hand with
//! commit-reveal, and closing its vote.

use anyhow::{anyhow, bail, Context as _, Result};
use pallet_validation::{Ballot, Reason};
use provenant_client::{runtime, subxt::utils::Static};
use serde_json::json;

use crate::{
	chain::{self, ballot_name, contribution_status_name, submit},
	context::{format_prv, Context},
	votes,
};

/// Judge a contribution: commits a sealed ballot now, waits for the reveal window, reveals.
#[derive(Debug, clap::Args)]
pub(crate) struct VoteCommand {
	/// The contribution's number.
	contribution: u64,
	/// `accept` or `reject`.
	verdict: String,
	/// Why, for a rejection: bad-format, corrupt, off-topic, near-duplicate, low-quality,
	/// unsafe or other.
	#[arg(long)]
	reason: Option<String>,
	/// The validator's key.
	#[arg(long)]
	from: String,
}

/// Close a contribution's vote once its reveal window is over, and show the verdict.
#[derive(Debug, clap::Args)]
pub(crate) struct CloseCommand {
	/// The contribution's number.
	contribution: u64,
	/// Who pays the fee.
	#[arg(long)]
	from: String,
}

fn parse_ballot(verdict: &str, reason: Option<&str>) -> Result<Ballot> {
	match (verdict, reason) {
		("accept", None) => Ok(Ballot::Accept),
		("accept", Some(_)) => bail!("a reason goes with `reject` only"),
		("reject", Some(name)) => Reason::from_name(name).map(Ballot::Reject).ok_or_else(|| {
			let names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
			anyhow!("unknown reason '{name}'; use one of: {}", names.join(", "))
		}),
		("reject", None) => bail!("`reject` needs --reason, so the contributor learns why"),
		(other, _) => bail!("the verdict is `accept` or `reject`, not '{other}'"),
	}
}

impl VoteCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let ballot = parse_ballot(&self.verdict, self.reason.as_deref())?;
		let client = context.connect().await?;
		let signer = context.signer(&self.from)?;
		let voter = signer.public_key().to_account_id();
		let rpc = provenant_client::rpc_client(&context.url).await?;
		let rules = chain::validation_params(&client).await?;
		let record = client
			.at_current_block()
			.await?
			.storage()
			.try_fetch(runtime::storage().datanets().contributions(), (self.contribution,))
			.await?
			.ok_or_else(|| anyhow!("there is no contribution #{}", self.contribution))?
			.decode()?;
		let commit_end = record.block + rules.commit_period;
		let reveal_end = commit_end + rules.reveal_period;

		// A saved salt means this vote was already committed: resume at the reveal.
		let path = votes::path(context, self.contribution, &voter);
		let (ballot, salt) = match votes::load(&path)? {
			Some((saved, salt)) => {
				if saved != ballot {
					bail!(
						"you already committed '{}' on #{}; a sealed vote cannot change",
						ballot_name(&saved),
						self.contribution
					);
				}
				(saved, salt)
			},
			None => {
				let mut salt = [0u8; 32];
				getrandom::getrandom(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
				// Saved before sending: if the command stops after the commit lands, the
				// salt is still there to reveal with.
				votes::save(&path, &ballot, &salt)?;
				let sealed = pallet_validation::commitment(&ballot, &salt, &voter.0);
				let call = runtime::transactions().validation().commit(self.contribution, sealed);
				if let Err(err) =
					provenant_client::submit_and_finalize_from_pool(&client, &rpc, &call, &signer)
						.await
				{
					let _ = std::fs::remove_file(&path);
					return Err(err).context("committing the sealed vote");
				}
				if !context.json {
					eprintln!(
						"committed a sealed vote on #{}; revealing after block #{commit_end}",
						self.contribution
					);
				}
				(ballot, salt)
			},
		};

		while chain::block_number(&client).await? <= commit_end {
			tokio::time::sleep(std::time::Duration::from_secs(1)).await;
		}
		let call =
			runtime::transactions().validation().reveal(self.contribution, Static(ballot), salt);
		provenant_client::submit_and_finalize_from_pool(&client, &rpc, &call, &signer)
			.await
			.context("revealing the vote")?;
		std::fs::remove_file(&path).ok();
		context.emit(
			format!(
				"voted {} on #{}; the vote can be closed after block #{reveal_end} \
				 (`provenant close {}`)",
				ballot_name(&ballot),
				self.contribution,
				self.contribution
			),
			json!({
				"contribution": self.contribution,
				"ballot": ballot_name(&ballot),
				"closesAfter": reveal_end,
			}),
		);
		Ok(())
	}
}

impl CloseCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		let call = runtime::transactions().validation().close(self.contribution);
		let events = submit(context, &client, &self.from, &call).await?;
		let verdict = events
			.find_first::<runtime::validation::events::VerdictReached>()
			.ok_or_else(|| anyhow!("the chain reported no verdict"))??;
		let reason = verdict.reason.map(|reason| reason.name());
		let slashed: u128 = events
			.find::<runtime::validation::events::Slashed>()
			.filter_map(Result::ok)
			.map(|event| event.amount)
			.sum();
		let status = contribution_status_name(verdict.status.0);
		context.emit(
			format!(
				"#{}: {status}{}{}",
				self.contribution,
				reason.map(|r| format!(" ({r})")).unwrap_or_default(),
				if slashed > 0 {
					format!("; {} slashed", format_prv(slashed))
				} else {
					String::new()
				}
			),
			json!({
				"contribution": self.contribution,
				"status": status,
				"reason": reason,
				"slashed": slashed.to_string(),
			}),
		);
		Ok(())
	}
}
