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
	/// A claim or an extension lasts 30 minutes; a worker extends while it trains.
	pub const LeasePeriod: BlockNumber = 30 * MINUTES;
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
	type LeasePeriod = LeasePeriod;
	type ExpirySlash = ExpirySlash;
	// A commit lists every member's share; 1,000 keeps the dearest commit well inside a block.
	type MaxShares = ConstU32<1_000>;
	type MaxLeasesPerBlock = ConstU32<64>;
	// Adapters up to the contribution cap travel in one extrinsic, like contributions.
	type MaxAdapterBytes = ConstU32<{ crate::MAX_CONTRIBUTION_BYTES }>;
	type DefaultFeeSplit = DefaultFeeSplit;
	type WeightInfo = pallet_models::weights::SubstrateWeight<Runtime>;
}

/// 50% trainer, 20% pools, 30% contributors.
pub fn default_fee_split() -> FeeSplit {
	FeeSplit {
		trainer: Perbill::from_percent(50),
		pools: Perbill::from_percent(20),
		contributors: Perbill::from_percent(30),
	}
}
