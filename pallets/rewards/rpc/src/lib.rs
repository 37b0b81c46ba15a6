//! # Rewards RPC
//!
//! - `rewards_leaderboard(datanet, limit?, after?, at?)`: a page of a datanet's contributors
//!   ranked by the Wilson lower bound of their acceptance rate, with their counts and earnings;
//!   the next page starts `after` the last account of this one.
//! - `rewards_standing(account, at?)`: an account's claimable rewards, in all and by what
//!   earned them, and its rank in each datanet it contributed to.
//! - `rewards_epoch(at?)`: the epoch clock and how far payouts have got.
//!
//! Balances are decimal strings in the chain's smallest unit, so no JSON reader rounds them.

use std::{fmt::Display, marker::PhantomData, sync::Arc};

use codec::Codec;
use jsonrpsee::{
	core::RpcResult,
	proc_macros::rpc,
	types::error::{ErrorObject, ErrorObjectOwned},
};
pub use pallet_rewards_runtime_api::RewardsApi as RewardsRuntimeApi;
use pallet_rewards_runtime_api::{Claims, EpochStatus, LeaderboardEntry};
use polkadot_sdk::{
	sp_api::ProvideRuntimeApi,
	sp_blockchain::HeaderBackend,
	sp_runtime::traits::{Block as BlockT, Saturating},
};
use serde::{Deserialize, Serialize};

/// The longest leaderboard served.
pub const MAX_LIMIT: u32 = 1000;
/// The leaderboard length when none is given.
pub const DEFAULT_LIMIT: u32 = 100;

/// Error codes of this RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
	/// The runtime call failed.
	RuntimeError,
	/// A parameter is out of range.
	InvalidParams,
}

impl Error {
	/// The JSON-RPC error code.
	pub const fn code(self) -> i32 {
		match self {
			Error::RuntimeError => 4102,
			Error::InvalidParams => 4104,
		}
	}

	fn with(self, message: impl Into<String>) -> ErrorObjectOwned {
		ErrorObject::owned(self.code(), message.into(), None::<()>)
	}
}

/// A contributor's rank and record in one datanet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rank<AccountId> {
	/// 1 for the best score.
	pub rank: u32,
	/// The contributor (absent inside a standing, which is one account's).
	#[serde(skip_serializing_if = "Option::is_none")]
	pub account: Option<AccountId>,
	/// The datanet (absent inside a leaderboard, which is one datanet's).
	#[serde(skip_serializing_if = "Option::is_none")]
	pub datanet: Option<u32>,
	/// Accepted contributions.
	pub accepted: u32,
	/// Rejected contributions, decayed to the current epoch.
	pub rejected: f64,
	/// The Wilson lower bound of the acceptance rate, in [0, 1].
	pub score: f64,
	/// The same score in parts per billion, exactly as the chain holds it.
	pub score_ppb: u32,
	/// Rewards earned in the datanet.
	pub earned: String,
}

impl<AccountId> Rank<AccountId> {
	fn new<A, Balance: Display>(
		entry: LeaderboardEntry<A, Balance>,
		account: Option<AccountId>,
		datanet: Option<u32>,
	) -> Self {
		Self {
			rank: entry.rank,
			account,
			datanet,
			accepted: entry.accepted,
			rejected: entry.rejected.to_float(),
			score: entry.score.deconstruct() as f64 / 1e9,
			score_ppb: entry.score.deconstruct(),
			earned: entry.earned.to_string(),
		}
	}
}

/// An account's rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
	/// Credited and not yet claimed: what `claim` pays.
	pub claimable: String,
	/// The same, by what earned it.
	pub by_source: BySource,
	/// Its rank in each datanet it contributed to.
	pub datanets: Vec<Rank<()>>,
}

/// Claimable rewards by what earned them (see `pallet_rewards::RewardSource`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BySource {
	/// Contributors' parts of epoch pools.
	pub contributions: String,
	/// Validators' parts of epoch pools.
	pub validation: String,
	/// Datanet owners' parts of epoch pools.
	pub ownership: String,
	/// Fine-tuning fees: workers' pay and contributors' shares.
	pub training: String,
	/// Paid inference: operators' parts and the trainers' and contributors' shares.
	pub inference: String,
}

impl<Balance: Display> From<&Claims<Balance>> for BySource {
	fn from(claims: &Claims<Balance>) -> Self {
		Self {
			contributions: claims.contributions.to_string(),
			validation: claims.validation.to_string(),
			ownership: claims.ownership.to_string(),
			training: claims.training.to_string(),
			inference: claims.inference.to_string(),
		}
	}
}

/// The epoch clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Epoch<BlockNumber> {
	/// The current epoch.
	pub epoch: u32,
	/// Its first block.
	pub started_at: BlockNumber,
	/// Its length in blocks.
	pub length: u32,
	/// The oldest epoch not fully paid out; equal to `epoch` when all are.
	pub unsettled: u32,
}

impl<BlockNumber> From<EpochStatus<BlockNumber>> for Epoch<BlockNumber> {
	fn from(status: EpochStatus<BlockNumber>) -> Self {
		Self {
			epoch: status.epoch,
			started_at: status.started_at,
			length: status.length,
			unsettled: status.unsettled,
		}
	}
}

/// The rewards RPC methods.
#[rpc(client, server)]
pub trait RewardsApi<BlockHash, AccountId, BlockNumber> {
	/// Up to `limit` of `datanet`'s contributors in rank order, from the best or from the one
	/// after `after`.
	#[method(name = "rewards_leaderboard")]
	fn leaderboard(
		&self,
		datanet: u32,
		limit: Option<u32>,
		after: Option<AccountId>,
		at: Option<BlockHash>,
	) -> RpcResult<Vec<Rank<AccountId>>>;

	/// `account`'s claimable rewards and ranks.
	#[method(name = "rewards_standing")]
	fn standing(&self, account: AccountId, at: Option<BlockHash>) -> RpcResult<Standing>;

	/// The epoch clock.
	#[method(name = "rewards_epoch")]
	fn epoch(&self, at: Option<BlockHash>) -> RpcResult<Epoch<BlockNumber>>;
}

/// Implements the rewards RPC over a client.
pub struct Rewards<C, Block, Balance> {
	client: Arc<C>,
	_marker: PhantomData<(Block, Balance)>,
}

impl<C, Block, Balance> Rewards<C, Block, Balance> {
	/// Serves the RPC from `client`.
	pub fn new(client: Arc<C>) -> Self {
		Self { client, _marker: PhantomData }
	}
}

impl<C, Block, AccountId, Balance, BlockNumber>
	RewardsApiServer<<Block as BlockT>::Hash, AccountId, BlockNumber> for Rewards<C, Block, Balance>
where
	Block: BlockT,
	C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
	C::Api: RewardsRuntimeApi<Block, AccountId, Balance, BlockNumber>,
	AccountId: Codec + Clone + Display + Serialize + Send + Sync + 'static,
	Balance: Codec + Display + Saturating + Copy + Send + Sync + 'static,
	BlockNumber: Codec + Clone + Serialize + Send + Sync + 'static,
{
	fn leaderboard(
		&self,
		datanet: u32,
		limit: Option<u32>,
		after: Option<AccountId>,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Vec<Rank<AccountId>>> {
		let limit = limit.unwrap_or(DEFAULT_LIMIT);
		if limit == 0 || limit > MAX_LIMIT {
			return Err(Error::InvalidParams
				.with(format!("limit must be between 1 and {MAX_LIMIT}, not {limit}")));
		}
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		let rows = self
			.client
			.runtime_api()
			.leaderboard(at, datanet, after.clone(), limit)
			.map_err(|e| Error::RuntimeError.with(format!("runtime call failed: {e}")))?
			.ok_or_else(|| {
				let after = after.map(|account| account.to_string()).unwrap_or_default();
				Error::InvalidParams.with(format!(
					"{after} has no standing in datanet {datanet}, so no page follows it"
				))
			})?;
		Ok(rows
			.into_iter()
			.map(|row| {
				let account = row.account.clone();
				Rank::new(row, Some(account), None)
			})
			.collect())
	}

	fn standing(
		&self,
		account: AccountId,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Standing> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		let standing = self
			.client
			.runtime_api()
			.standing(at, account)
			.map_err(|e| Error::RuntimeError.with(format!("runtime call failed: {e}")))?;
		Ok(Standing {
			claimable: standing.claimable.total().to_string(),
			by_source: BySource::from(&standing.claimable),
			datanets: standing
				.datanets
				.into_iter()
				.map(|(datanet, row)| Rank::new(row, None, Some(datanet)))
				.collect(),
		})
	}

	fn epoch(&self, at: Option<<Block as BlockT>::Hash>) -> RpcResult<Epoch<BlockNumber>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		self.client
			.runtime_api()
			.epoch_status(at)
			.map(Epoch::from)
			.map_err(|e| Error::RuntimeError.with(format!("runtime call failed: {e}")))
	}
}
