//! A test runtime: frame-system, balances, and the datanets pallet with small, readable caps.

use crate as pallet_datanets;
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io, sp_runtime};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

/// Account identifiers in tests.
pub(crate) type AccountId = u64;
/// Balances in tests.
pub(crate) type Balance = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Datanets: pallet_datanets,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = sp_runtime::traits::IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type AccountStore = System;
	type Balance = Balance;
	type RuntimeHoldReason = RuntimeHoldReason;
}

/// Test caps, in bytes: small so tests stay fast, in the same proportions as the defaults.
pub(crate) const KIB: u32 = 1024;
pub(crate) const HARD_CAP: u32 = 8 * KIB;
pub(crate) const ACCOUNT_DAILY_BYTES: u64 = 10 * KIB as u64;
pub(crate) const ACCOUNT_DAILY_FILES: u32 = 20;
pub(crate) const BLOCKS_PER_DAY: u64 = 100;
pub(crate) const DEPOSIT_BASE: Balance = 100;
pub(crate) const DEPOSIT_PER_BYTE: Balance = 1;

parameter_types! {
	pub const DepositBase: Balance = DEPOSIT_BASE;
	pub const DepositPerByte: Balance = DEPOSIT_PER_BYTE;
	pub const MaxFileBytes: u32 = HARD_CAP;
	pub const AccountDailyFiles: u32 = ACCOUNT_DAILY_FILES;
	pub const AccountDailyBytes: u64 = ACCOUNT_DAILY_BYTES;
	pub const BlocksPerDay: u64 = BLOCKS_PER_DAY;
}

impl pallet_datanets::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = DepositBase;
	type DepositPerByte = DepositPerByte;
	type MaxNameLen = ConstU32<64>;
	type MaxSummaryLen = ConstU32<256>;
	type MaxTagLen = ConstU32<16>;
	type MaxTags = ConstU32<4>;
	type MaxFileBytes = MaxFileBytes;
	type AccountDailyFiles = AccountDailyFiles;
	type AccountDailyBytes = AccountDailyBytes;
	type BlocksPerDay = BlocksPerDay;
	type OnContribution = ();
	type WeightInfo = ();
}

/// Accounts funded at genesis.
pub(crate) const ALICE: AccountId = 1;
pub(crate) const BOB: AccountId = 2;
pub(crate) const CHARLIE: AccountId = 3;
/// An account with just enough to exist, not enough for a deposit.
pub(crate) const POOR: AccountId = 4;
pub(crate) const INITIAL_BALANCE: Balance = 1_000_000;

/// Builds test externalities with funded accounts, at block 1 so events are recorded.
pub(crate) struct ExtBuilder;

impl ExtBuilder {
	pub(crate) fn build() -> sp_io::TestExternalities {
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		pallet_balances::GenesisConfig::<Test> {
			balances: vec![
				(ALICE, INITIAL_BALANCE),
				(BOB, INITIAL_BALANCE),
				(CHARLIE, INITIAL_BALANCE),
				(POOR, 10),
			],
			..Default::default()
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		let mut ext = sp_io::TestExternalities::new(storage);
		ext.execute_with(|| run_to_block(1));
		ext
	}

	/// Runs `test`, then checks the pallet's invariants.
	pub(crate) fn build_and_execute(test: impl FnOnce()) {
		Self::build().execute_with(|| {
			test();
			Datanets::do_try_state().expect("datanets invariants hold");
		});
	}
}

/// Moves to block `n`, with the extrinsic index set as block execution would set it.
pub(crate) fn run_to_block(n: u64) {
	System::run_to_block::<AllPalletsWithSystem>(n);
	frame_system::Pallet::<Test>::set_extrinsic_index(0);
}
