//! A test runtime: balances, the real datanets pallet (the registry validation judges), and
//! the validation pallet with short windows.

use crate as pallet_validation;
use frame_support::derive_impl;
use pallet_datanets::{Caps, ContributionId, DataKind, DatanetId, Format, FormatSet};
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
		Validation: pallet_validation,
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

#[derive_impl(pallet_datanets::config_preludes::TestDefaultConfig)]
impl pallet_datanets::Config for Test {
	type Currency = Balances;
}

pub(crate) use pallet_validation::config_preludes::{
	test_params, COMMIT_PERIOD, MAX_VOTERS, MIN_STAKE, REVEAL_PERIOD, UNBONDING_DELAY,
};

#[derive_impl(pallet_validation::config_preludes::TestDefaultConfig)]
impl pallet_validation::Config for Test {
	type Currency = Balances;
	type Contributions = Datanets;
}

/// The datanet's owner, who also contributes.
pub(crate) const OWNER: AccountId = 1;
/// A contributor.
pub(crate) const CONTRIBUTOR: AccountId = 2;
/// Validators, funded with `INITIAL_BALANCE`.
pub(crate) const V1: AccountId = 11;
pub(crate) const V2: AccountId = 12;
pub(crate) const V3: AccountId = 13;
pub(crate) const V4: AccountId = 14;
pub(crate) const V5: AccountId = 15;
pub(crate) const V6: AccountId = 16;
pub(crate) const INITIAL_BALANCE: Balance = 1_000_000;

/// Builds test externalities with funded accounts and one text datanet (0), at block 1.
pub(crate) struct ExtBuilder;

impl ExtBuilder {
	pub(crate) fn build() -> sp_io::TestExternalities {
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		pallet_balances::GenesisConfig::<Test> {
			balances: [OWNER, CONTRIBUTOR, V1, V2, V3, V4, V5, V6]
				.into_iter()
				.map(|who| (who, INITIAL_BALANCE))
				.collect(),
			..Default::default()
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		let mut ext = sp_io::TestExternalities::new(storage);
		ext.execute_with(|| {
			run_to_block(1);
			frame_support::assert_ok!(Datanets::create(
				RuntimeOrigin::signed(OWNER),
				b"text".to_vec(),
				vec![],
				vec![],
				DataKind::Text,
				FormatSet::of(&[Format::Txt]),
				Caps { max_file_bytes: 8 * 1024, daily_bytes: 1 << 30 },
			));
		});
		ext
	}

	/// Runs `test`, then checks the pallet's invariants.
	pub(crate) fn build_and_execute(test: impl FnOnce()) {
		Self::build().execute_with(|| {
			test();
			Datanets::do_try_state().expect("datanets invariants hold");
			Validation::do_try_state().expect("validation invariants hold");
		});
	}
}

/// The datanet every test uses.
pub(crate) const DATANET: DatanetId = 0;

/// Moves to block `n`, with the extrinsic index set as block execution would set it.
pub(crate) fn run_to_block(n: u64) {
	System::run_to_block::<AllPalletsWithSystem>(n);
	frame_system::Pallet::<Test>::set_extrinsic_index(0);
}

/// Submits a text file by `who` and returns its contribution id.
pub(crate) fn contribute(who: AccountId, text: &str) -> ContributionId {
	let id = pallet_datanets::NextContributionId::<Test>::get();
	frame_support::assert_ok!(Datanets::submit(
		RuntimeOrigin::signed(who),
		DATANET,
		text.as_bytes().to_vec()
	));
	id
}
