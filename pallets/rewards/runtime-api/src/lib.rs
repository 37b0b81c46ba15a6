//! Runtime API of the rewards pallet: leaderboards, one account's standing, and the epoch
//! clock, for the node's `rewards_*` RPC and for wallets.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;
pub use pallet_rewards::{AccountStanding, Claims, EpochStatus, LeaderboardEntry};

/// A datanet's identifier.
pub type DatanetId = u32;

polkadot_sdk::sp_api::decl_runtime_apis! {
	/// Read access to rankings and rewards.
	pub trait RewardsApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// Up to `limit` of `datanet`'s contributors in rank order: from the best, or from the
		/// one after `after`. `None` when `after` has no standing in the datanet.
		fn leaderboard(
			datanet: DatanetId,
			after: Option<AccountId>,
			limit: u32,
		) -> Option<Vec<LeaderboardEntry<AccountId, Balance>>>;

		/// `who`'s claimable rewards and its rank in each datanet it contributed to.
		fn standing(who: AccountId) -> AccountStanding<Balance>;

		/// The current epoch and how far payouts have got.
		fn epoch_status() -> EpochStatus<BlockNumber>;
	}
}
