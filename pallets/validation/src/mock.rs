//! A test runtime: balances, the real datanets pallet (the registry validation judges), and
//! the validation pallet with short windows.

use crate::{self as pallet_validation, Params};
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU32, ConstU64},
};
use pallet_datanets::{Caps, ContributionId, DataKind, DatanetId, Format, FormatSet};
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io, sp_runtime};
use sp_runtime::{BuildStorage, Perbill};

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

parameter_types! {
	pub const MaxFileBytes: u32 = 8 * 1024;
	pub const AccountDailyFiles: u32 = 1_000;
	pub const AccountDailyBytes: u64 = 1 << 30;
	pub const BlocksPerDay: u64 = 1_000;
}

impl pallet_datanets::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = ConstU64<1>;
	type DepositPerByte = ConstU64<0>;
	type MaxNameLen = ConstU32<16>;
	type MaxSummaryLen = ConstU32<16>;
	type MaxTagLen = ConstU32<16>;
	type MaxTags = ConstU32<1>;
	type MaxFileBytes = MaxFileBytes;
	type AccountDailyFiles = AccountDailyFiles;
	type AccountDailyBytes = AccountDailyBytes;
	type BlocksPerDay = BlocksPerDay;
	type OnContribution = ();
	type WeightInfo = ();
}

/// The most validators that may commit on one contribution, in tests.
pub(crate) const MAX_VOTERS: u32 = 5;

impl pallet_validation::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Contributions = Datanets;
	type OnVerdict = ();
	type DefaultParams = TestParams;
	type MaxDatanetsPerValidator = ConstU32<3>;
	type MaxVoters = ConstU32<MAX_VOTERS>;
	type WeightInfo = ();
}

/// Test rules: commit for 10 blocks after submission, reveal for the next 10.
pub(crate) const MIN_STAKE: Balance = 1_000;
pub(crate) const COMMIT_PERIOD: u64 = 10;
pub(crate) const REVEAL_PERIOD: u64 = 10;
pub(crate) const UNBONDING_DELAY: u64 = 50;

pub(crate) fn test_params() -> Params<Balance, u64> {
	Params {
		min_stake_per_datanet: MIN_STAKE,
		unbonding_delay: UNBONDING_DELAY,
		commit_period: COMMIT_PERIOD,
		reveal_period: REVEAL_PERIOD,
		quorum: 2,
		supermajority: Perbill::from_rational(2u32, 3u32),
		wrong_vote_slash: Perbill::from_percent(1),
		no_reveal_slash: Perbill::from_percent(5),
	}
}

parameter_types! {
	pub TestParams: Params<Balance, u64> = test_params();
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
