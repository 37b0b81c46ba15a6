//! `pallet_models`: base models, fine-tuning jobs and trainer workers (DESIGN §6).

use crate::{
	Balance, Balances, BlockNumber, Datanets, Rewards, Runtime, RuntimeHoldReason, MINUTES, UNIT,
};
use pallet_models::FeeSplit;
use polkadot_sdk::{
	frame_support::{parameter_types, traits::ConstU32},
	sp_runtime::Perbill,
};

parameter_types! {
	/// Held per registered base model: 10 PRV.
	pub const ModelDeposit: Balance = 10 * UNIT;
	/// The smallest fee a job may offer: 1 PRV.
	pub const MinJobFee: Balance = UNIT;
	/// The smallest bond that lets a worker claim jobs: 100 PRV.
	pub const MinWorkerBond: Balance = 100 * UNIT;
	/// A claim or an extension lasts 30 minutes unless genesis or root says otherwise; a worker
	/// extends while it trains.
	pub const DefaultLeasePeriod: BlockNumber = 30 * MINUTES;
	/// A commit lists every member's share, and a paid answer's settlement credits each:
	/// 1,000 keeps the dearest of either well inside a block.
	pub const MaxShares: u32 = 1_000;
	/// A worker whose lease runs out loses 1% of its bond.
	pub const ExpirySlash: Perbill = Perbill::from_percent(1);
	/// The published default split: 50% to the trainer, 20% to the datanets' pools, 30% to
	/// the contributors.
	pub DefaultFeeSplit: FeeSplit = default_fee_split();
}

impl pallet_models::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Datanets = Datanets;
	type Rewards = Rewards;
	type ModelDeposit = ModelDeposit;
	type MinJobFee = MinJobFee;
	type MinWorkerBond = MinWorkerBond;
	type DefaultLeasePeriod = DefaultLeasePeriod;
	type ExpirySlash = ExpirySlash;
	type MaxShares = MaxShares;
	type MaxLeasesPerBlock = ConstU32<64>;
	// Adapters up to the contribution cap travel in one extrinsic, like contributions.
	type MaxAdapterBytes = ConstU32<{ crate::MAX_CONTRIBUTION_BYTES }>;
	type DefaultFeeSplit = DefaultFeeSplit;
	type WeightInfo = pallet_models::weights::SubstrateWeight<Runtime>;
}

/// The dev chain's lease: one minute, so that a test sees a killed worker's lease run out.
/// A live worker extends it every half lease.
pub const DEVELOPMENT_LEASE_PERIOD: BlockNumber = MINUTES;

/// 50% trainer, 20% pools, 30% contributors.
pub fn default_fee_split() -> FeeSplit {
	FeeSplit {
		trainer: Perbill::from_percent(50),
		pools: Perbill::from_percent(20),
		contributors: Perbill::from_percent(30),
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use pallet_models::WeightInfo;
	use polkadot_sdk::frame_support::traits::Get;

	type Weights = pallet_models::weights::SubstrateWeight<Runtime>;

	/// The dearest calls, at their bounds, leave most of a block to everything else: a commit
	/// listing `MaxShares` shares, a job on eight datanets, a block's worth of lapsed leases.
	#[test]
	fn the_dearest_model_calls_fit_in_a_tenth_of_a_block() {
		let block = crate::configs::RuntimeBlockWeights::get().max_block;
		let shares = <Runtime as pallet_models::Config>::MaxShares::get();
		let leases = <Runtime as pallet_models::Config>::MaxLeasesPerBlock::get();
		for (what, weight) in [
			("commit", Weights::commit(shares)),
			("create_job", Weights::create_job(8)),
			("expire_leases", Weights::expire_leases(leases)),
			("publish_adapter", Weights::publish_adapter(crate::MAX_CONTRIBUTION_BYTES)),
		] {
			assert!(weight.ref_time() > 0, "{what}: weights are measured, not zero");
			assert!(
				weight.ref_time() * 10 <= block.ref_time(),
				"{what} takes {weight:?} of a {block:?} block"
			);
		}
	}
}
