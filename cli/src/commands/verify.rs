//! `provenant verify <adapter dir | sha256 | job>`: checks, from public chain data alone, that
//! an adapter is the committed result of a job, and which contributions trained it.
//!
//! Every check is recomputed here, not taken from the node: the adapter's hash, each datanet's
//! log root at the job's count (from the log's entries), the set's root, every member's
//! inclusion proof and verdict, the shares' root. A node that lies produces a failed check.
//! With `--retrain`, the job is trained again from the chain's data, as its worker did, and
//! the adapter bytes compared.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use pallet_datanets::ContributionStatus;
use pallet_models::{merkle, LogEntry, SetPart};
use provenant_client::{runtime, Client};
use provenant_worker::{
	fingerprint::{fingerprint, sha256_file},
	run::describe_shares,
};
use serde_json::json;

use crate::{
	chain::{self, contribution_status_name},
	commands::job::state_name,
	context::Context,
};

/// Options for `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Command {
	/// The adapter: a directory holding `adapter_model.safetensors`, its sha256 (hex), or a
	/// job number.
	target: String,
	/// Check this contribution's inclusion proof as the node serves it; repeat for several.
	#[arg(long = "contribution")]
	contributions: Vec<u64>,
	/// Prove this file, or blake2-256 content hash (`0x`-hex), was not in the training set;
	/// repeat for several.
	#[arg(long = "not-in")]
	not_in: Vec<String>,
	/// Check this base-model file against the model's registered hashes; repeat for several.
	#[arg(long = "base")]
	base: Vec<PathBuf>,
	/// Train the job again from on-chain data with this local base model (HF directory or GGUF
	/// file) and compare the adapter bytes with the committed ones.
	#[arg(long, value_name = "MODEL")]
	retrain: Option<PathBuf>,
	/// Show no progress bar while retraining.
	#[arg(long)]
	quiet: bool,
}

/// One check and how it went.
struct Check {
	what: String,
	ok: bool,
	detail: String,
}

#[derive(Default)]
struct Report {
	checks: Vec<Check>,
}

impl Report {
	fn record(&mut self, what: impl Into<String>, ok: bool, detail: impl Into<String>) {
		self.checks.push(Check { what: what.into(), ok, detail: detail.into() });
	}
}

fn hex32(text: &str) -> Option<[u8; 32]> {
	hex::decode(text.trim_start_matches("0x")).ok()?.try_into().ok()
}

/// The job the target names, and the local adapter file if it is a directory.
async fn resolve(client: &Client, target: &str) -> Result<(u64, Option<[u8; 32]>)> {
	let path = Path::new(target);
	let local = if path.is_dir() {
		let file = path.join("adapter_model.safetensors");
		if !file.exists() {
			bail!("{} has no adapter_model.safetensors", path.display());
		}
		Some(sha256_file(&file)?)
	} else {
		None
	};
	if let Ok(job) = target.parse::<u64>() {
		return Ok((job, None));
	}
	let sha = match local {
		Some(sha) => sha,
		None => hex32(target).ok_or_else(|| {
			anyhow!("'{target}' is neither an adapter directory, a sha256 nor a job number")
		})?,
	};
	let job = client
		.at_current_block()
		.await?
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().job_by_adapter(sha))
		.await?
		.ok_or_else(|| {
			anyhow!("no committed job has an adapter with sha256 {}", hex::encode(sha))
		})?;
	Ok((job, local))
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		let (job_id, local) = resolve(&client, &self.target).await?;
		let details = chain::job(&client, job_id).await?;
		let outcome = details.outcome.as_ref().ok_or_else(|| {
			anyhow!(
				"job {job_id} is {}, not committed: it has no adapter to verify",
				state_name(&details.job.state)
			)
		})?;
		let training = &details.job.training;
		let mut report = Report::default();

		// The adapter.
		let committed = outcome.adapter;
		let chain_copy = match &details.adapter {
			Some(published) if local.is_none() || self.retrain.is_some() => {
				Some(chain::content(context, &published.content).await?)
			},
			_ => None,
		};
		match local {
			Some(sha) => report.record(
				"adapter hash",
				sha == committed,
				format!("local sha256 {} · committed {}", hex::encode(sha), hex::encode(committed)),
			),
			None => match &chain_copy {
				Some(bytes) => {
					let sha = provenant_trainer::adapter::sha256(bytes);
					report.record(
						"adapter hash",
						sha == committed,
						format!(
							"the chain's copy ({} bytes) has sha256 {} · committed {}",
							bytes.len(),
							hex::encode(sha),
							hex::encode(committed)
						),
					);
				},
				None => {
					report.record("adapter hash", false, "the chain holds no published adapter")
				},
			},
		}

		// The training set, rebuilt from the logs' entries.
		let mut members = Vec::new();
		loop {
			let page = client
				.at_current_block()
				.await?
				.runtime_apis()
				.call(runtime::runtime_apis().models_api().training_set(
					job_id,
					members.len() as u64,
					1_000,
				))
				.await?;
			if page.is_empty() {
				break;
			}
			members.extend(page);
		}
		let mut parts = Vec::new();
		for part in &training.parts.0 {
			let leaves: Vec<_> = members
				.iter()
				.filter(|member| member.datanet == part.datanet)
				.map(|member| {
					LogEntry {
						contribution: member.entry.contribution,
						content: member.entry.content,
					}
					.leaf()
				})
				.collect();
			let root = merkle::root_of(leaves.iter().copied());
			report.record(
				format!("datanet {} root", part.datanet),
				leaves.len() as u64 == part.count && root == part.root,
				format!(
					"{} entries give {} · job recorded {} entries, {}",
					leaves.len(),
					hex::encode(root),
					part.count,
					hex::encode(part.root)
				),
			);
			parts.push(SetPart { datanet: part.datanet, count: part.count, root });
		}
		let set_root = merkle::set_root(&parts);
		report.record(
			"training-set root",
			set_root == training.root && outcome.training_root == training.root,
			format!(
				"recomputed {} · job {} · committed {}",
				hex::encode(set_root),
				hex::encode(training.root),
				hex::encode(outcome.training_root)
			),
		);

		// The shares the fee was split by, as fractions of the contributors' part.
		let share_leaves: Vec<_> = details
			.shares
			.iter()
			.map(|share| merkle::share_leaf(share.contribution, share.weight))
			.collect();
		let shares_root = merkle::root_of(share_leaves.iter().copied());
		let committed_weights: Vec<(u64, u64)> =
			details.shares.iter().map(|share| (share.contribution, share.weight)).collect();
		let total_weight: u64 = committed_weights.iter().map(|(_, weight)| weight).sum();
		let fraction = |weight: u64| weight as f64 / total_weight.max(1) as f64;

		// Each member: its proof against its datanet's root, and its verdict.
		let at = client.at_current_block().await?;
		let mut rows = Vec::new();
		let mut bad_members = Vec::new();
		for part in &parts {
			let in_part: Vec<_> = members.iter().filter(|m| m.datanet == part.datanet).collect();
			let leaves: Vec<_> = in_part
				.iter()
				.map(|m| {
					LogEntry { contribution: m.entry.contribution, content: m.entry.content }.leaf()
				})
				.collect();
			let levels = merkle::levels(&leaves);
			for (member, leaf) in in_part.iter().zip(&leaves) {
				let siblings = merkle::proof_from(&levels, member.index);
				let proved = merkle::fold_proof(*leaf, member.index, &siblings) == part.root;
				let record = at
					.storage()
					.try_fetch(
						runtime::storage().datanets().contributions(),
						(member.entry.contribution,),
					)
					.await?
					.map(|value| value.decode())
					.transpose()?;
				let (contributor, verdict, hash_matches) = match &record {
					Some(record) => (
						record.contributor.to_string(),
						contribution_status_name(record.status.0),
						record.hash == member.entry.content
							&& record.status.0 == ContributionStatus::Accepted,
					),
					None => (String::new(), "unknown", false),
				};
				if !(proved && hash_matches) {
					bad_members.push(member.entry.contribution);
				}
				rows.push(json!({
					"contribution": member.entry.contribution,
					"datanet": member.datanet,
					"index": member.index,
					"content": hex::encode(member.entry.content),
					"contributor": contributor,
					"verdict": verdict,
					"proved": proved && hash_matches,
					"share": details
						.shares
						.iter()
						.find(|share| share.contribution == member.entry.contribution)
						.map(|share| fraction(share.weight)),
				}));
			}
		}
		report.record(
			"members",
			bad_members.is_empty() && members.len() as u64 == training.size,
			if bad_members.is_empty() {
				format!("{} contributions, each proved and accepted", members.len())
			} else {
				format!("these fail their proof or are not accepted: {bad_members:?}")
			},
		);

		// The shares the fee was split by.
		let listed_in_order = details
			.shares
			.iter()
			.map(|share| share.contribution)
			.eq(members.iter().map(|m| m.entry.contribution));
		report.record(
			"shares",
			shares_root == outcome.shares_root && listed_in_order,
			format!(
				"{} shares give {} · committed {}",
				details.shares.len(),
				hex::encode(shares_root),
				hex::encode(outcome.shares_root)
			),
		);

		// Contributions named on the command line: the node's proof, checked here, and the
		// contribution's share, folded from its leaf to the committed root.
		for contribution in &self.contributions {
			let (ok, detail) =
				match details.shares.iter().position(|s| s.contribution == *contribution) {
					Some(i) => {
						let siblings = merkle::proof(&share_leaves, i as u64);
						let root = merkle::fold_proof(share_leaves[i], i as u64, &siblings);
						(
							root == outcome.shares_root,
							format!(
							"{:.4}% (weight {} of {}): its leaf folds to {} in {} steps · committed {}",
							100.0 * fraction(details.shares[i].weight),
							details.shares[i].weight,
							total_weight,
							hex::encode(root),
							siblings.len(),
							hex::encode(outcome.shares_root)
						),
						)
					},
					None => (false, "the job lists no share for it".to_string()),
				};
			report.record(format!("contribution {contribution}'s share"), ok, detail);
			let proof = at
				.runtime_apis()
				.call(runtime::runtime_apis().models_api().inclusion_proof(job_id, *contribution))
				.await?;
			let (ok, detail) = match proof {
				Some(proof) => {
					let part = parts.iter().find(|part| part.datanet == proof.member.datanet);
					let leaf = LogEntry {
						contribution: proof.member.entry.contribution,
						content: proof.member.entry.content,
					}
					.leaf();
					let root = merkle::fold_proof(leaf, proof.member.index, &proof.siblings);
					let ok = proof.member.entry.contribution == *contribution
						&& part.is_some_and(|p| p.root == root && proof.member.index < p.count);
					(
						ok,
						format!(
							"datanet {} position {}: proof folds to {}",
							proof.member.datanet,
							proof.member.index,
							hex::encode(root)
						),
					)
				},
				None => (false, "the node has no proof: it is not in the set".to_string()),
			};
			report.record(format!("contribution {contribution} in the set"), ok, detail);
		}

		// Files or hashes that must not be in the set.
		for item in &self.not_in {
			let hash = match hex32(item) {
				Some(hash) if !Path::new(item).exists() => hash,
				_ => {
					let bytes = std::fs::read(item).map_err(|e| {
						anyhow!("--not-in {item}: neither a readable file nor a hash: {e}")
					})?;
					pallet_datanets::rules::content_hash(&bytes)
				},
			};
			let (ok, detail) = not_in_set(&client, &parts, &hash).await?;
			report.record(format!("{item} not in the set"), ok, detail);
		}

		// Base-model files.
		if !self.base.is_empty() {
			let base = chain::model(&client, details.job.model).await?;
			for file in &self.base {
				let sha = sha256_file(file)?;
				let ok = base.weights.0.contains(&sha) || base.tokenizer == sha;
				report.record(
					format!("base file {}", file.display()),
					ok,
					format!(
						"sha256 {} {} model {}'s registered files",
						hex::encode(sha),
						if ok { "is one of" } else { "is none of" },
						details.job.model
					),
				);
			}
		}

		let mut retrained = serde_json::Value::Null;
		if let Some(model_path) = &self.retrain {
			let base = chain::model(&client, details.job.model).await?;
			if fingerprint(model_path)?.weights != base.weights.0 {
				bail!(
					"--retrain {}: its weights are not model {}'s registered files",
					model_path.display(),
					details.job.model
				);
			}
			let work = tempfile::tempdir()?;
			let started = std::time::Instant::now();
			let (dir, trained) = provenant_worker::retrain(
				&context.url,
				job_id,
				model_path,
				work.path(),
				self.quiet || context.json,
			)
			.await
			.with_context(|| format!("retraining job {job_id}"))?;
			let seconds = started.elapsed().as_secs_f64();
			let bytes = std::fs::read(dir.join(provenant_trainer::adapter::WEIGHTS_FILE))?;
			let sha = provenant_trainer::adapter::sha256(&bytes);
			let original = chain_copy.as_deref().unwrap_or_default();
			let difference = if sha == committed {
				None
			} else {
				provenant_trainer::adapter::largest_difference(original, &bytes)?
			};
			let detail = match &difference {
				None if sha == committed => format!(
					"retrained in {seconds:.1} s: the adapter bytes are identical (sha256 {})",
					hex::encode(sha)
				),
				None => format!(
					"retrained in {seconds:.1} s: sha256 {} differs, yet every tensor is equal",
					hex::encode(sha)
				),
				Some(d) => format!(
					"retrained in {seconds:.1} s: sha256 {} differs; the largest difference is {:e} in {}",
					hex::encode(sha),
					d.largest,
					d.tensor
				),
			};
			report.record("retrain", sha == committed, detail);
			// The retrained run's attribution: the same method, the same shares.
			let same_shares = trained
				.weights
				.iter()
				.copied()
				.eq(details.shares.iter().map(|share| (share.contribution, share.weight)));
			report.record(
				"retrained shares",
				same_shares && trained.attribution == outcome.attribution.0,
				format!(
					"retrained {} · committed {}",
					describe_shares(&trained.weights, &trained.attribution),
					describe_shares(&committed_weights, &outcome.attribution.0)
				),
			);
			retrained = json!({
				"identical": sha == committed,
				"sha256": hex::encode(sha),
				"seconds": seconds,
				"largestDifference": difference.as_ref().map(|d| d.largest),
				"tensor": difference.as_ref().map(|d| d.tensor.clone()),
			});
		}

		let failed: Vec<&Check> = report.checks.iter().filter(|check| !check.ok).collect();
		let mut human = format!(
			"job {job_id}, model {}, adapter {}\n  {}",
			details.job.model,
			hex::encode(committed),
			describe_shares(&committed_weights, &outcome.attribution.0)
		);
		for check in &report.checks {
			human.push_str(&format!(
				"\n  {} {}: {}",
				if check.ok { "ok  " } else { "FAIL" },
				check.what,
				check.detail
			));
		}
		let json = json!({
			"job": job_id,
			"model": details.job.model,
			"adapter": hex::encode(committed),
			"verified": failed.is_empty(),
			"checks": report.checks.iter().map(|c| json!({"check": c.what, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
			"attribution": outcome.attribution.0,
			"members": rows,
			"retrain": retrained,
		});
		context.emit(human, json);
		if !failed.is_empty() {
			let names: Vec<&str> = failed.iter().map(|check| check.what.as_str()).collect();
			bail!("verification failed: {}", names.join("; "));
		}
		Ok(())
	}
}

/// Whether the contribution with content `hash` is outside the set, and why.
async fn not_in_set(client: &Client, parts: &[SetPart], hash: &[u8; 32]) -> Result<(bool, String)> {
	let at = client.at_current_block().await?;
	let mut reasons = Vec::new();
	for part in parts {
		let id = at
			.storage()
			.try_fetch(
				runtime::storage().datanets().contribution_by_content(),
				(part.datanet, *hash),
			)
			.await?
			.map(|value| value.decode())
			.transpose()?;
		let Some(id) = id else {
			reasons.push(format!("datanet {} holds no file with this hash", part.datanet));
			continue;
		};
		let position = at
			.storage()
			.try_fetch(runtime::storage().models().log_position(), (id,))
			.await?
			.map(|value| value.decode())
			.transpose()?;
		match position {
			None => reasons
				.push(format!("contribution {id} in datanet {} was never accepted", part.datanet)),
			Some((_, index)) if index >= part.count => reasons.push(format!(
				"contribution {id} was accepted at log position {index}, after the job's {} entries",
				part.count
			)),
			Some((_, index)) => {
				return Ok((
					false,
					format!(
						"contribution {id} IS in the set, at datanet {} position {index}",
						part.datanet
					),
				))
			},
		}
	}
	Ok((true, reasons.join("; ")))
}
