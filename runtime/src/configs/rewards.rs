//! `pallet_rewards`: rankings, pools and epoch payouts (DESIGN §4–5).

use crate::{Balance, Balances, Datanets, Runtime, UNIT};
use pallet_rewards::RewardParams;
use polkadot_sdk::{
	frame_support::{parameter_types, traits::ConstU32, PalletId},
	sp_runtime::Perbill,
};

parameter_types! {
	/// The published defaults; genesis presets may replace them, root may change them.
	pub DefaultParams: RewardParams<Balance> = default_params();
	/// Holds every pool and unclaimed reward.
	pub const RewardsPalletId: PalletId = PalletId(*b"prv/rwds");
}

impl pallet_rewards::Config for Runtime {
	type Currency = Balances;
	type Datanets = Datanets;
	type PalletId = RewardsPalletId;
	type DefaultParams = DefaultParams;
	// 500 payouts or re-rankings take under a tenth of a block (see the weights' sanity test).
	type MaxSettlementSteps = ConstU32<500>;
	type WeightInfo = pallet_rewards::weights::SubstrateWeight<Runtime>;
}

/// The published defaults: 600-block epochs, 100 PRV minted per active datanet per epoch,
/// rejections halving every 7 epochs, and a 70/20/10 split.
pub fn default_params() -> RewardParams<Balance> {
	RewardParams {
		epoch_length: 600,
		issuance_per_datanet: 100 * UNIT,
		rejection_half_life: 7,
		contributors_share: Perbill::from_percent(70),
		validators_share: Perbill::from_percent(20),
		owner_share: Perbill::from_percent(10),
	}
}

/// The development chain's rules: the defaults with 40-block (160 s) epochs, so a whole epoch
/// fits in a demo or a test.
pub fn development_params() -> RewardParams<Balance> {
	RewardParams { epoch_length: 40, ..default_params() }
}

#[cfg(test)]
mod tests {
	use super::*;
	use pallet_rewards::WeightInfo;
	use polkadot_sdk::frame_support::traits::Get;

	/// The most `on_initialize` does in a block: a full page of the dearest settlement step.
	/// It must leave blocks to transactions, however many contributions an epoch had.
	#[test]
	fn a_block_of_settlement_fits_in_a_tenth_of_a_block() {
		type Weights = pallet_rewards::weights::SubstrateWeight<Runtime>;
		let steps = <Runtime as pallet_rewards::Config>::MaxSettlementSteps::get();
		let dearest = [
			Weights::rerank(steps),
			Weights::open_pots(steps),
			Weights::pay_contributors(steps),
			Weights::pay_validators(steps),
			Weights::close_pots(steps),
		]
		.into_iter()
		.max_by_key(|w| w.ref_time())
		.unwrap();
		let worst = Weights::on_initialize_idle().saturating_add(dearest);
		let block = crate::configs::RuntimeBlockWeights::get().max_block;
		assert!(worst.ref_time() > 0, "weights are measured, not zero");
		assert!(
			worst.ref_time() * 10 <= block.ref_time(),
			"settlement takes {worst:?} of a {block:?} block"
		);
		// At that pace an epoch of 10,000 contributors settles within 21 blocks.
		assert!(10_000u32.div_ceil(steps) <= 21);
	}
}
