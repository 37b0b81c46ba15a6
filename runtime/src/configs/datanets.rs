//! `pallet_datanets`: the published defaults of DESIGN §2.

use crate::{
	Balance, Balances, BlockNumber, Runtime, RuntimeHoldReason, DAYS, MAX_CONTRIBUTION_BYTES,
	MILLI_UNIT, UNIT,
};
use polkadot_sdk::frame_support::{parameter_types, traits::ConstU32};

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
