//! `pallet_validation`: staked commit-reveal judging of contributions (DESIGN §3).

use crate::{
	Balance, Balances, BlockNumber, Datanets, Runtime, RuntimeHoldReason, DAYS, MINUTES, UNIT,
};
use pallet_validation::Params;
use polkadot_sdk::{
	frame_support::{parameter_types, traits::ConstU32},
	sp_runtime::Perbill,
};

parameter_types! {
	/// The published defaults; genesis presets may replace them, root may change them.
	pub DefaultParams: Params<Balance, BlockNumber> = default_params();
}

impl pallet_validation::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Contributions = Datanets;
	// Rewards ranks and pays on each verdict; models logs accepted files for training sets.
	type OnVerdict = (crate::Rewards, crate::Models);
	type DefaultParams = DefaultParams;
	type MaxDatanetsPerValidator = ConstU32<16>;
	type MaxVoters = ConstU32<16>;
	type WeightInfo = pallet_validation::weights::SubstrateWeight<Runtime>;
}

/// The published defaults: 100 PRV per datanet served, ten-minute commit and reveal windows,
/// a week to unbond, two revealed ballots for a verdict, and slashing only past 2/3.
pub fn default_params() -> Params<Balance, BlockNumber> {
	Params {
		min_stake_per_datanet: 100 * UNIT,
		unbonding_delay: 7 * DAYS,
		commit_period: 10 * MINUTES,
		reveal_period: 10 * MINUTES,
		quorum: 2,
		supermajority: Perbill::from_rational(2u32, 3u32),
		wrong_vote_slash: Perbill::from_percent(1),
		no_reveal_slash: Perbill::from_percent(5),
	}
}

/// The development chain's rules: the defaults with 40 s windows and a 2-minute unbonding, so
/// a whole vote fits in a demo or a test.
pub fn development_params() -> Params<Balance, BlockNumber> {
	Params { commit_period: 10, reveal_period: 10, unbonding_delay: 30, ..default_params() }
}
