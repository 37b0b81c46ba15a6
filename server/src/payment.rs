//! Paid mode: every request must be covered by a voucher, signed by the consumer of a channel
//! open to this server's operator on chain (`pallet_inference`), and the server settles the
//! vouchers it took, so the chain splits each payment by the published rule.
//!
//! A request costs `price × (prompt tokens + max_tokens)`, at the price the channel opened
//! with; once answered, the tokens it did not use are credited back. A voucher is cumulative
//! per (channel, model): to pay for a request, the consumer signs one whose total covers what
//! was spent on that model so far plus this request. The ledger of vouchers taken is written
//! to disk before a request is answered, so a restart neither forgets a payment nor serves one
//! twice; a background task settles each new voucher on chain, retrying until it lands.

use std::{
	collections::BTreeMap,
	path::PathBuf,
	sync::{Arc, Mutex},
	time::Duration,
};

use anyhow::{Context as _, Result};
use provenant_client::{
	runtime::{
		self,
		runtime_types::{
			pallet_inference::types::{Channel, Voucher},
			sp_runtime::MultiSignature,
		},
	},
	subxt::{rpcs::RpcClient, utils::AccountId32},
	subxt_signer::sr25519::Keypair,
	Client,
};
use serde::{Deserialize, Serialize};

/// A channel as the client decodes it.
type ChannelOf = Channel<AccountId32, u128, u32>;

/// A voucher as a request carries it, in its `payment` field:
/// `{"channel": 3, "cumulative": "1200000", "signature": "0x…"}`.
#[derive(Clone, Debug)]
pub struct Offered {
	/// The channel it spends.
	pub channel: u64,
	/// The total promised for this model on this channel; 0 when the request only asks what
	/// to sign.
	pub cumulative: u128,
	/// The consumer's sr25519 signature, hex.
	pub signature: Option<String>,
}

impl Offered {
	/// Reads the `payment` field. The total may be a decimal string (JSON numbers lose
	/// precision past 2^53) or a number.
	pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
		let channel = value["channel"]
			.as_u64()
			.ok_or("`payment.channel` must be the number of a channel open to this server")?;
		let cumulative = match &value["cumulative"] {
			serde_json::Value::Null => 0,
			serde_json::Value::String(text) => text
				.parse()
				.map_err(|_| format!("`payment.cumulative` is not an amount: {text:?}"))?,
			number => number
				.as_u64()
				.map(u128::from)
				.ok_or("`payment.cumulative` must be a whole amount in the smallest unit")?,
		};
		let signature = value["signature"].as_str().map(String::from);
		Ok(Self { channel, cumulative, signature })
	}
}

/// Why a request is not covered, for a 402 answer that tells the consumer what to sign.
#[derive(Debug)]
pub struct NotCovered {
	/// In words.
	pub message: String,
	/// The voucher that would cover the request, when there is a channel to sign for.
	pub required: Option<Required>,
}

/// The voucher a request needs.
#[derive(Clone, Debug, Serialize)]
pub struct Required {
	/// The channel.
	pub channel: u64,
	/// The job, or `null` for the base model.
	pub job: Option<u64>,
	/// The total to sign for, as a decimal string.
	pub cumulative: String,
	/// What this request costs at most, as a decimal string.
	pub cost: String,
}

/// What a request was charged, given back with its answer.
#[derive(Clone, Debug)]
pub struct Charge {
	/// The channel.
	pub channel: u64,
	/// The job, or `None` for the base model.
	pub job: Option<u64>,
	/// The channel's price per token.
	pub price: u128,
	/// Tokens it was held for (prompt + max_tokens): `price × tokens` was held.
	pub tokens: u128,
}

/// One (channel, model)'s account with this server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Entry {
	channel: u64,
	job: Option<u64>,
	/// The highest voucher taken, and its signature (hex).
	cumulative: u128,
	signature: String,
	/// What answers have cost so far; never above `cumulative`.
	spent: u128,
	/// The highest voucher the chain has settled.
	settled: u128,
}

/// What the server owns of paid mode.
pub struct Payments {
	client: Client,
	rpc: RpcClient,
	operator: Keypair,
	genesis: [u8; 32],
	ledger: Mutex<BTreeMap<String, Entry>>,
	path: PathBuf,
}

fn key(channel: u64, job: Option<u64>) -> String {
	match job {
		Some(job) => format!("{channel}/job-{job}"),
		None => format!("{channel}/base"),
	}
}

impl Payments {
	/// Paid mode for `operator` at `price` per token: publishes the price on chain when it
	/// differs, reads the ledger at `path` (kept across restarts), and starts settling.
	pub async fn start(
		client: Client,
		rpc: RpcClient,
		operator: Keypair,
		price: u128,
		path: PathBuf,
	) -> Result<Arc<Self>> {
		let account = operator.public_key().to_account_id();
		let at = client.at_current_block().await?;
		let published = at
			.storage()
			.try_fetch(runtime::storage().inference().prices(), (account,))
			.await?
			.map(|value| value.decode())
			.transpose()?;
		if published != Some(price) {
			provenant_client::submit_and_finalize_from_pool(
				&client,
				&rpc,
				&runtime::transactions().inference().set_price(Some(price)),
				&operator,
			)
			.await
			.context("publishing the operator's price on chain")?;
		}
		let ledger = match std::fs::read(&path) {
			Ok(bytes) => serde_json::from_slice(&bytes)
				.with_context(|| format!("reading the payment ledger {}", path.display()))?,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
			Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
		};
		let genesis = client.genesis_hash().0;
		let payments =
			Arc::new(Self { client, rpc, operator, genesis, ledger: Mutex::new(ledger), path });
		tokio::spawn(payments.clone().settle_forever());
		Ok(payments)
	}

	/// The operator's account.
	pub fn operator(&self) -> AccountId32 {
		self.operator.public_key().to_account_id()
	}

	/// The chain's genesis hash, which vouchers are signed over.
	pub fn genesis(&self) -> [u8; 32] {
		self.genesis
	}

	/// Takes `offered` as payment for `tokens` tokens from `job` (`None`: the base model), or
	/// says what would cover it.
	pub async fn charge(
		&self,
		offered: Option<&Offered>,
		job: Option<u64>,
		tokens: u128,
	) -> Result<Charge, NotCovered> {
		let operator = self.operator();
		let Some(offered) = offered else {
			return Err(NotCovered {
				message: format!(
					"this server answers paid requests only: open a channel to its operator \
					 {operator} (`provenant pay open {operator} --deposit <PRV> --from <key>`) \
					 and send a voucher in the request's `payment` field (`provenant ask` does)"
				),
				required: None,
			});
		};
		let channel = self.channel(offered.channel).await?;
		if channel.operator != operator {
			return Err(NotCovered {
				message: format!(
					"channel {} pays operator {}, not this server's ({operator})",
					offered.channel, channel.operator
				),
				required: None,
			});
		}
		if channel.closes_at.is_some() {
			return Err(NotCovered {
				message: format!(
					"channel {} is closing and takes no new requests",
					offered.channel
				),
				required: None,
			});
		}
		let cost = channel.price.saturating_mul(tokens);
		let mut ledger = self.ledger.lock().expect("ledger lock");
		let entry = ledger.get(&key(offered.channel, job)).cloned().unwrap_or_default();
		let needed = entry.spent.saturating_add(cost);
		let required = Required {
			channel: offered.channel,
			job,
			cumulative: needed.max(entry.cumulative).to_string(),
			cost: cost.to_string(),
		};
		let not_covered =
			|message: String| NotCovered { message, required: Some(required.clone()) };
		let cumulative = offered.cumulative;
		if cumulative < needed {
			return Err(not_covered(format!(
				"this request costs up to {cost} ({tokens} tokens at {} each); sign a voucher \
				 for a total of {needed} on channel {} for this model",
				channel.price, offered.channel
			)));
		}
		let signature = offered
			.signature
			.as_deref()
			.and_then(|hex_text| hex::decode(hex_text.trim_start_matches("0x")).ok())
			.and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
			.ok_or_else(|| not_covered("the voucher's signature is not 64 bytes of hex".into()))?;
		let payload =
			provenant_client::voucher_payload(&self.genesis, offered.channel, job, cumulative);
		if !provenant_client::signed_by(&signature, &payload, &channel.consumer) {
			return Err(not_covered(format!(
				"the voucher is not signed by channel {}'s consumer {} for this model and total",
				offered.channel, channel.consumer
			)));
		}
		// Every model's highest voucher on this channel together may not pass the deposit:
		// the chain would refuse to settle past it.
		let promised: u128 = ledger
			.values()
			.filter(|other| other.channel == offered.channel && other.job != job)
			.map(|other| other.cumulative)
			.sum::<u128>()
			.saturating_add(cumulative.max(entry.cumulative));
		if promised > channel.deposit {
			return Err(not_covered(format!(
				"channel {} holds a deposit of {}, less than its vouchers would promise \
				 ({promised}); top it up with `provenant pay top-up {} --amount <PRV>`",
				offered.channel, channel.deposit, offered.channel
			)));
		}
		let mut updated = entry.clone();
		updated.channel = offered.channel;
		updated.job = job;
		if cumulative > entry.cumulative {
			updated.cumulative = cumulative;
			updated.signature = hex::encode(signature);
		}
		updated.spent = needed;
		ledger.insert(key(offered.channel, job), updated);
		self.save(&ledger).map_err(|e| NotCovered {
			message: format!("the server could not record the payment: {e:#}"),
			required: None,
		})?;
		Ok(Charge { channel: offered.channel, job, price: channel.price, tokens })
	}

	/// Gives back what `charge` held for tokens the answer did not use.
	pub fn refund(&self, charge: &Charge, used_tokens: u128) {
		let unused = charge.tokens.saturating_sub(used_tokens);
		let mut ledger = self.ledger.lock().expect("ledger lock");
		if let Some(entry) = ledger.get_mut(&key(charge.channel, charge.job)) {
			entry.spent = entry.spent.saturating_sub(charge.price.saturating_mul(unused));
			if let Err(e) = self.save(&ledger) {
				eprintln!("payments: could not record a refund: {e:#}");
			}
		}
	}

	/// Channel `id` as the chain holds it now, or the consumer's next step when it is not open.
	async fn channel(&self, id: u64) -> Result<ChannelOf, NotCovered> {
		self.read_channel(id)
			.await
			.map_err(|e| NotCovered {
				message: format!("the server cannot read channel {id} from the chain: {e}"),
				required: None,
			})?
			.ok_or_else(|| NotCovered {
				message: format!(
					"there is no open channel {id}; open one to this server's operator {} with \
					 `provenant pay open`",
					self.operator()
				),
				required: None,
			})
	}

	async fn read_channel(&self, id: u64) -> Result<Option<ChannelOf>> {
		let at = self.client.at_current_block().await?;
		Ok(at
			.storage()
			.try_fetch(runtime::storage().inference().channels(), (id,))
			.await?
			.map(|value| value.decode())
			.transpose()?)
	}

	/// Writes the ledger beside its final place, then moves it there, so a crash leaves the
	/// old ledger or the new one, never half of one.
	fn save(&self, ledger: &BTreeMap<String, Entry>) -> Result<()> {
		let partial = self.path.with_extension("partial");
		std::fs::write(&partial, serde_json::to_vec_pretty(ledger)?)?;
		std::fs::rename(&partial, &self.path)?;
		Ok(())
	}

	/// Settles every voucher taken and not yet settled, every few seconds, for as long as the
	/// server runs. A failed settlement is tried again on the next round.
	async fn settle_forever(self: Arc<Self>) {
		loop {
			tokio::time::sleep(Duration::from_secs(2)).await;
			let due: Vec<Entry> = {
				let ledger = self.ledger.lock().expect("ledger lock");
				ledger.values().filter(|entry| entry.cumulative > entry.settled).cloned().collect()
			};
			for entry in due {
				match self.settle(&entry).await {
					Ok(()) => {
						let mut ledger = self.ledger.lock().expect("ledger lock");
						if let Some(kept) = ledger.get_mut(&key(entry.channel, entry.job)) {
							kept.settled = kept.settled.max(entry.cumulative);
						}
						if let Err(e) = self.save(&ledger) {
							eprintln!("payments: could not record a settlement: {e:#}");
						}
					},
					Err(e) => eprintln!(
						"payments: settling channel {} ({}) failed, retrying: {e:#}",
						entry.channel,
						key(entry.channel, entry.job)
					),
				}
			}
		}
	}

	/// Settles `entry`'s voucher, unless the chain already has it (a settlement that landed
	/// before a crash).
	async fn settle(&self, entry: &Entry) -> Result<()> {
		let Some(channel) = self.read_channel(entry.channel).await? else {
			// Closed: nothing can be settled on it any more.
			eprintln!(
				"payments: channel {} closed before its voucher for {} was settled",
				entry.channel, entry.cumulative
			);
			return Ok(());
		};
		let on_chain = channel
			.settled
			.0
			.iter()
			.find(|model| model.job == entry.job)
			.map_or(0, |model| model.cumulative);
		if on_chain >= entry.cumulative {
			return Ok(());
		}
		let signature: [u8; 64] = hex::decode(&entry.signature)?
			.try_into()
			.map_err(|_| anyhow::anyhow!("a stored signature is not 64 bytes"))?;
		let voucher =
			Voucher { channel: entry.channel, job: entry.job, cumulative: entry.cumulative };
		let call =
			runtime::transactions().inference().settle(voucher, MultiSignature::Sr25519(signature));
		provenant_client::submit_and_finalize_from_pool(
			&self.client,
			&self.rpc,
			&call,
			&self.operator,
		)
		.await?;
		Ok(())
	}
}
