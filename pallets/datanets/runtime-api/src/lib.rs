//! Runtime API of the datanets pallet: paged listings of contribution records, for the node's
//! `datanets_contributions` RPC and for wallets.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::Codec;
pub use pallet_datanets::{Contribution, ContributionId, DatanetId};

polkadot_sdk::sp_api::decl_runtime_apis! {
	/// Read access to contributions.
	pub trait DatanetsApi<AccountId, BlockNumber>
	where
		AccountId: Codec,
		BlockNumber: Codec,
	{
		/// Page `page` (from 0) of `datanet`'s contributions, oldest first, at most
		/// `page_size` records.
		fn contributions(
			datanet: DatanetId,
			page: u32,
			page_size: u32,
		) -> Vec<(ContributionId, Contribution<AccountId, BlockNumber>)>;
	}
}
