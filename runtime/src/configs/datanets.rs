//! `pallet_datanets`: the published defaults of DESIGN §2.

use crate::{
	Balance, Balances, BlockNumber, Runtime, RuntimeCall, RuntimeHoldReason, DAYS,
	MAX_CONTRIBUTION_BYTES, MILLI_UNIT, UNIT,
};
use polkadot_sdk::{
	frame_support::{
		parameter_types,
		traits::{ConstU32, Contains},
	},
	pallet_sudo, pallet_utility,
};

/// One mebibyte.
const MIB: u32 = 1024 * 1024;

parameter_types! {
	/// Held for any datanet, returned on close: 1 PRV.
	pub const DatanetDepositBase: Balance = UNIT;
	/// Held per byte of name, summary and tags: 0.001 PRV.
	pub const DatanetDepositPerByte: Balance = MILLI_UNIT;
	/// The runtime's hard cap on one file (8 MiB).
	pub const MaxFileBytes: u32 = MAX_CONTRIBUTION_BYTES;
	/// Files per account per day, across all datanets.
	pub const AccountDailyFiles: u32 = 20;
	/// Bytes per account per day, across all datanets: 10 MiB.
	pub const AccountDailyBytes: u64 = 10 * MIB as u64;
	/// A day, in blocks.
	pub const BlocksPerDay: BlockNumber = DAYS;
}

impl pallet_datanets::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = DatanetDepositBase;
	type DepositPerByte = DatanetDepositPerByte;
	type MaxNameLen = ConstU32<64>;
	type MaxSummaryLen = ConstU32<1024>;
	type MaxTagLen = ConstU32<32>;
	type MaxTags = ConstU32<8>;
	type MaxFileBytes = MaxFileBytes;
	type AccountDailyFiles = AccountDailyFiles;
	type AccountDailyBytes = AccountDailyBytes;
	type BlocksPerDay = BlocksPerDay;
	type OnContribution = ();
	type WeightInfo = pallet_datanets::weights::SubstrateWeight<Runtime>;
}

/// The runtime's call filter: refuses any call that wraps a `Datanets::submit` or a
/// `Models::publish_adapter`.
///
/// The node indexes a contribution's (or an adapter's) bytes as the tail of its extrinsic,
/// which is the file only when the call is the whole extrinsic. Inside `batch`, `with_weight` or
/// `sudo_unchecked_weight` the tail is something else, so the hash would name wrong bytes.
/// Each contribution is therefore its own transaction; a wrapped one fails with
/// `CallFiltered` and changes nothing.
pub struct ContributionsStandAlone;

impl Contains<RuntimeCall> for ContributionsStandAlone {
	fn contains(call: &RuntimeCall) -> bool {
		matches!(call, RuntimeCall::Datanets(_) | RuntimeCall::Models(_))
			|| !wraps_contribution(call)
	}
}

/// Whether `call` is or contains a call whose bytes are indexed, at any depth.
fn wraps_contribution(call: &RuntimeCall) -> bool {
	use pallet_sudo::Call as Sudo;
	use pallet_utility::Call as Utility;
	match call {
		RuntimeCall::Datanets(pallet_datanets::Call::submit { .. })
		| RuntimeCall::Models(pallet_models::Call::publish_adapter { .. }) => true,
		RuntimeCall::Utility(
			Utility::batch { calls }
			| Utility::batch_all { calls }
			| Utility::force_batch { calls },
		) => calls.iter().any(wraps_contribution),
		RuntimeCall::Utility(
			Utility::as_derivative { call, .. }
			| Utility::dispatch_as { call, .. }
			| Utility::dispatch_as_fallible { call, .. }
			| Utility::with_weight { call, .. },
		)
		| RuntimeCall::Sudo(
			Sudo::sudo { call }
			| Sudo::sudo_as { call, .. }
			| Sudo::sudo_unchecked_weight { call, .. },
		) => wraps_contribution(call),
		RuntimeCall::Utility(Utility::if_else { main, fallback }) => {
			wraps_contribution(main) || wraps_contribution(fallback)
		},
		_ => false,
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::configs::RuntimeCall;
	use alloc::{boxed::Box, vec};
	use pallet_datanets::Call as Datanets;

	fn contribution() -> RuntimeCall {
		RuntimeCall::Datanets(Datanets::submit { datanet: 0, data: b"hello".to_vec() })
	}

	#[test]
	fn a_contribution_sent_alone_passes() {
		assert!(ContributionsStandAlone::contains(&contribution()));
	}

	#[test]
	fn wrapped_contributions_are_refused() {
		let remark =
			RuntimeCall::System(polkadot_sdk::frame_system::Call::remark { remark: vec![] });
		let wrapped = [
			RuntimeCall::Utility(pallet_utility::Call::batch {
				calls: vec![contribution(), remark.clone()],
			}),
			RuntimeCall::Utility(pallet_utility::Call::with_weight {
				call: Box::new(contribution()),
				weight: Default::default(),
			}),
			RuntimeCall::Sudo(pallet_sudo::Call::sudo {
				call: Box::new(RuntimeCall::Utility(pallet_utility::Call::batch_all {
					calls: vec![contribution()],
				})),
			}),
		];
		for call in &wrapped {
			assert!(!ContributionsStandAlone::contains(call), "{call:?} passed the filter");
		}
		let adapter = RuntimeCall::Models(pallet_models::Call::publish_adapter {
			job: 0,
			config: vec![],
			weights: b"adapter".to_vec(),
		});
		assert!(ContributionsStandAlone::contains(&adapter), "an adapter sent alone passes");
		let wrapped_adapter =
			RuntimeCall::Utility(pallet_utility::Call::batch { calls: vec![adapter] });
		assert!(!ContributionsStandAlone::contains(&wrapped_adapter));
		let harmless = RuntimeCall::Utility(pallet_utility::Call::batch { calls: vec![remark] });
		assert!(ContributionsStandAlone::contains(&harmless));
	}
}
