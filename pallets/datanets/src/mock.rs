//! A test runtime: frame-system, balances, and the datanets pallet with small, readable caps.

use crate as pallet_datanets;
use frame_support::{
	derive_impl,
	traits::{ConstU32, ConstU64},
};
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

// The preludes' accounts and balances are `u64`, as `AccountId` and `Balance` say.
#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type AccountStore = System;
}

pub(crate) use pallet_datanets::config_preludes::{
	BLOCKS_PER_DAY, DEPOSIT_BASE, DEPOSIT_PER_BYTE, KIB, MAX_FILE_BYTES as HARD_CAP,
};

/// Daily quotas per account, small enough for tests to reach.
pub(crate) const ACCOUNT_DAILY_FILES: u32 = 20;
pub(crate) const ACCOUNT_DAILY_BYTES: u64 = 10 * KIB as u64;

#[derive_impl(pallet_datanets::config_preludes::TestDefaultConfig)]
impl pallet_datanets::Config for Test {
	type Currency = Balances;
	type AccountDailyFiles = ConstU32<ACCOUNT_DAILY_FILES>;
	type AccountDailyBytes = ConstU64<ACCOUNT_DAILY_BYTES>;
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
