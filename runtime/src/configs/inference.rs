//! `pallet_inference`: prepaid channels for paid answers, settled with consumers' vouchers
//! (DESIGN §6–7).

use crate::{
	configs::models::MaxShares, Balance, Balances, BlockNumber, Models, Rewards, Runtime,
	RuntimeHoldReason, Signature, MINUTES, UNIT,
};
use polkadot_sdk::{frame_support::parameter_types, sp_runtime::Perbill};

parameter_types! {
	/// The smallest channel deposit: 1 PRV.
	pub const MinChannelDeposit: Balance = UNIT;
	/// After a consumer asks to close, its operator has 10 minutes to settle its last
	/// vouchers.
	pub const ClosingPeriod: BlockNumber = 10 * MINUTES;
	/// The published default: the serving operator takes 30% of each payment for a
	/// fine-tune; the rest is split as the job's fee was.
	pub const DefaultOperatorShare: Perbill = Perbill::from_percent(30);
}

impl pallet_inference::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Jobs = Models;
	type Rewards = Rewards;
	type Signature = Signature;
	type Signer = <Signature as polkadot_sdk::sp_runtime::traits::Verify>::Signer;
	type MinDeposit = MinChannelDeposit;
	type ClosingPeriod = ClosingPeriod;
	type MaxShares = MaxShares;
	type DefaultOperatorShare = DefaultOperatorShare;
	type WeightInfo = pallet_inference::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = BenchmarkSigner;
}

/// Signs benchmark vouchers with a fresh sr25519 key in the benchmark's keystore.
#[cfg(feature = "runtime-benchmarks")]
pub struct BenchmarkSigner;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_inference::BenchmarkHelper<crate::AccountId, Signature> for BenchmarkSigner {
	fn sign(message: &[u8]) -> (crate::AccountId, Signature) {
		use polkadot_sdk::{sp_core::crypto::KeyTypeId, sp_io::crypto};
		const KEY: KeyTypeId = KeyTypeId(*b"vchr");
		let public = crypto::sr25519_generate(KEY, None);
		let signature = crypto::sr25519_sign(KEY, &public, message).expect("the key was just made");
		(public.into(), Signature::Sr25519(signature))
	}
}
