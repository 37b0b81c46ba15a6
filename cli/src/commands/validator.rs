//! `provenant validator bond|unbond|withdraw|status`, `provenant vote` and `provenant close`:
//! staking on quality checks and judging contributions with commit-reveal.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use codec::{Decode, Encode};
use pallet_validation::{Ballot, Reason, Salt};
use provenant_client::{
	runtime::{
		self,
		runtime_types::pallet_validation::types::{
			Ballot as ChainBallot, Params, Reason as ChainReason,
		},
	},
	subxt::utils::AccountId32,
	Client,
};
use serde_json::json;

use super::{contributions::status_name, datanet::submit};
use crate::context::{format_prv, parse_prv, Context};

/// Stake on quality checks.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Hold stake and choose the datanets to judge. The minimum is per datanet.
	Bond {
		/// A datanet to serve; repeat for several.
		#[arg(long = "datanet", required = true)]
		datanets: Vec<u32>,
		/// PRV to add to the bond, for example `150` or `0.5`; 0 only changes the datanets.
		#[arg(long)]
		amount: String,
		/// The validator's key: a keystore name or a dev URI such as `//Charlie`.
		#[arg(long)]
		from: String,
	},
	/// Stop voting with some stake; it can be withdrawn after the unbonding delay.
	Unbond {
		/// PRV to unbond.
		#[arg(long)]
		amount: String,
		/// The validator's key.
		#[arg(long)]
		from: String,
	},
	/// Release unbonded stake whose delay has passed.
	Withdraw {
		/// The validator's key.
		#[arg(long)]
		from: String,
	},
	/// Judge a datanet's files automatically: fetch, check (decoding, structure,
	/// near-duplicates), vote with a reason, reveal and close. Runs until stopped.
	Auto(super::auto::AutoArgs),
	/// A validator's stake and datanets, and the published rules.
	Status {
		/// A keystore name, SS58 address or dev URI.
		who: String,
	},
}

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

pub(super) async fn params(client: &Client) -> Result<Params<u128, u32>> {
	let at = client.at_current_block().await?;
	Ok(at
		.storage()
		.entry(runtime::storage().validation().current_params())?
		.fetch(())
		.await?
		.decode()?)
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

pub(super) fn ballot_name(ballot: &Ballot) -> String {
	match ballot {
		Ballot::Accept => "accept".into(),
		Ballot::Reject(reason) => format!("reject ({})", reason.name()),
	}
}

/// The chain's ballot: the pallet's, in the client's generated types.
pub(super) fn to_chain(ballot: &Ballot) -> ChainBallot {
	match ballot {
		Ballot::Accept => ChainBallot::Accept,
		Ballot::Reject(reason) => ChainBallot::Reject(match reason {
			Reason::BadFormat => ChainReason::BadFormat,
			Reason::Corrupt => ChainReason::Corrupt,
			Reason::OffTopic => ChainReason::OffTopic,
			Reason::NearDuplicate => ChainReason::NearDuplicate,
			Reason::LowQuality => ChainReason::LowQuality,
			Reason::Unsafe => ChainReason::Unsafe,
			Reason::Other => ChainReason::Other,
		}),
	}
}

/// The pallet's reason for a reason read from the chain, for its name.
pub(crate) fn from_chain(reason: &ChainReason) -> Reason {
	match reason {
		ChainReason::BadFormat => Reason::BadFormat,
		ChainReason::Corrupt => Reason::Corrupt,
		ChainReason::OffTopic => Reason::OffTopic,
		ChainReason::NearDuplicate => Reason::NearDuplicate,
		ChainReason::LowQuality => Reason::LowQuality,
		ChainReason::Unsafe => Reason::Unsafe,
		ChainReason::Other => Reason::Other,
	}
}

/// Where a sealed vote's salt waits for its reveal: beside the keystore, one file per vote,
/// so a vote survives the command being stopped between commit and reveal.
pub(super) fn salt_path(context: &Context, contribution: u64, voter: &AccountId32) -> PathBuf {
	let dir = context.keystore_path.parent().map(PathBuf::from).unwrap_or_default();
	dir.join("votes").join(format!("{contribution}-{voter}.json"))
}

pub(super) fn save_salt(path: &PathBuf, ballot: &Ballot, salt: &Salt) -> Result<()> {
	std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
	let record = json!({ "ballot": hex::encode(ballot.encode()), "salt": hex::encode(salt) });
	std::fs::write(path, record.to_string())
		.with_context(|| format!("saving {}", path.display()))?;
	#[cfg(unix)]
	{
		use std::os::unix::fs::PermissionsExt;
		std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
	}
	Ok(())
}

pub(super) fn load_salt(path: &PathBuf) -> Result<Option<(Ballot, Salt)>> {
	let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
	let record: serde_json::Value = serde_json::from_str(&text)?;
	let field = |name: &str| {
		record[name]
			.as_str()
			.and_then(|hex_text| hex::decode(hex_text).ok())
			.ok_or_else(|| anyhow!("{} is damaged ({name})", path.display()))
	};
	let ballot = Ballot::decode(&mut &field("ballot")?[..])?;
	let salt: Salt =
		field("salt")?.try_into().map_err(|_| anyhow!("{}: bad salt", path.display()))?;
	Ok(Some((ballot, salt)))
}

async fn block_number(client: &Client) -> Result<u32> {
	Ok(client.at_current_block().await?.block_number() as u32)
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		if let Command::Auto(args) = self {
			return args.execute(context).await;
		}
		let client = context.connect().await?;
		match self {
			Command::Auto(_) => unreachable!("handled above"),
			Command::Bond { datanets, amount, from } => {
				let amount = parse_prv(&amount)?;
				let call = runtime::transactions().validation().bond(datanets.clone(), amount);
				submit(context, &client, &from, &call).await?;
				context.emit(
					format!("bonded {} more; serving datanets {datanets:?}", format_prv(amount)),
					json!({ "bonded": amount.to_string(), "datanets": datanets }),
				);
			},
			Command::Unbond { amount, from } => {
				let amount = parse_prv(&amount)?;
				let events = submit(
					context,
					&client,
					&from,
					&runtime::transactions().validation().unbond(amount),
				)
				.await?;
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
			},
			Command::Withdraw { from } => {
				let events = submit(
					context,
					&client,
					&from,
					&runtime::transactions().validation().withdraw(),
				)
				.await?;
				let amount = events
					.find_first::<runtime::validation::events::Withdrawn>()
					.transpose()?
					.map(|event| event.amount)
					.unwrap_or_default();
				context.emit(
					format!("withdrew {}", format_prv(amount)),
					json!({ "withdrawn": amount.to_string() }),
				);
			},
			Command::Status { who } => {
				let account = context.account(&who)?;
				let rules = params(&client).await?;
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
			},
		}
		Ok(())
	}
}

impl VoteCommand {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let ballot = parse_ballot(&self.verdict, self.reason.as_deref())?;
		let client = context.connect().await?;
		let signer = context.signer(&self.from)?;
		let voter = signer.public_key().to_account_id();
		let rpc = provenant_client::rpc_client(&context.url).await?;
		let rules = params(&client).await?;
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
		let path = salt_path(context, self.contribution, &voter);
		let (ballot, salt) = match load_salt(&path)? {
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
				save_salt(&path, &ballot, &salt)?;
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

		while block_number(&client).await? <= commit_end {
			tokio::time::sleep(std::time::Duration::from_secs(1)).await;
		}
		let call =
			runtime::transactions().validation().reveal(self.contribution, to_chain(&ballot), salt);
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
		let reason = verdict.reason.as_ref().map(|reason| from_chain(reason).name());
		let slashed: u128 = events
			.find::<runtime::validation::events::Slashed>()
			.filter_map(Result::ok)
			.map(|event| event.amount)
			.sum();
		let status = status_name(&verdict.status);
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
