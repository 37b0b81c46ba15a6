//! A test runtime: balances, the real datanets and validation pallets, and rewards fed by
//! validation's verdicts, with 30-block epochs.

use crate::{self as pallet_rewards, RewardParams};
use frame_support::{
	assert_ok, derive_impl, parameter_types,
	traits::{ConstU32, ConstU64},
	PalletId,
};
use pallet_datanets::{Caps, ContributionId, DataKind, DatanetId, Format, FormatSet};
use pallet_validation::{Ballot, Params};
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
		Rewards: pallet_rewards,
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
	pub const AccountDailyFiles: u32 = 100_000;
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

/// Validation's test rules: commit for 10 blocks after submission, reveal for the next 10.
pub(crate) const MIN_STAKE: Balance = 1_000;
pub(crate) const COMMIT_PERIOD: u64 = 10;
pub(crate) const REVEAL_PERIOD: u64 = 10;

parameter_types! {
	pub ValidationParams: Params<Balance, u64> = Params {
		min_stake_per_datanet: MIN_STAKE,
		unbonding_delay: 50,
		commit_period: COMMIT_PERIOD,
		reveal_period: REVEAL_PERIOD,
		quorum: 2,
		supermajority: Perbill::from_rational(2u32, 3u32),
		wrong_vote_slash: Perbill::from_percent(1),
		no_reveal_slash: Perbill::from_percent(5),
	};
}

impl pallet_validation::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Contributions = Datanets;
	type OnVerdict = Rewards;
	type DefaultParams = ValidationParams;
	type MaxDatanetsPerValidator = ConstU32<3>;
	type MaxVoters = ConstU32<5>;
	type WeightInfo = ();
}

/// Blocks per epoch in tests.
pub(crate) const EPOCH: u64 = 30;
/// Minted per active datanet per epoch in tests.
pub(crate) const ISSUANCE: Balance = 100_000;

pub(crate) fn test_params() -> RewardParams<Balance> {
	RewardParams {
		epoch_length: EPOCH as u32,
		issuance_per_datanet: ISSUANCE,
		rejection_half_life: 7,
		contributors_share: Perbill::from_percent(70),
		validators_share: Perbill::from_percent(20),
		owner_share: Perbill::from_percent(10),
	}
}

parameter_types! {
	pub TestParams: RewardParams<Balance> = test_params();
	pub const RewardsPalletId: PalletId = PalletId(*b"prv/rwds");
	/// Settlement steps per block; tests of paging lower it.
	pub static MaxSteps: u32 = 1_000;
}

impl pallet_rewards::Config for Test {
	type Currency = Balances;
	type Datanets = Datanets;
	type PalletId = RewardsPalletId;
	type DefaultParams = TestParams;
	type MaxSettlementSteps = MaxSteps;
	type WeightInfo = ();
}

/// The datanet's owner.
pub(crate) const OWNER: AccountId = 1;
/// Contributors.
pub(crate) const ALICE: AccountId = 2;
pub(crate) const BOB: AccountId = 3;
/// Validators.
pub(crate) const V1: AccountId = 11;
pub(crate) const V2: AccountId = 12;
pub(crate) const V3: AccountId = 13;
/// Contributors 100.. and validators 11..=15 are funded.
pub(crate) const INITIAL_BALANCE: Balance = 1_000_000;

/// The datanet every test uses.
pub(crate) const DATANET: DatanetId = 0;

/// Builds test externalities with funded accounts and one text datanet (0), at block 1.
pub(crate) fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let funded = [OWNER, ALICE, BOB].into_iter().chain(11..=15).chain(100..140);
	pallet_balances::GenesisConfig::<Test> {
		balances: funded.map(|who| (who, INITIAL_BALANCE)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	pallet_rewards::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		run_to_block(1);
		assert_ok!(Datanets::create(
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

/// Runs `test`, then checks every pallet's invariants.
pub(crate) fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		Datanets::do_try_state().expect("datanets invariants hold");
		Validation::do_try_state().expect("validation invariants hold");
		Rewards::do_try_state().expect("rewards invariants hold");
	});
}

/// Moves to block `n`, with the extrinsic index set as block execution would set it.
pub(crate) fn run_to_block(n: u64) {
	System::run_to_block::<AllPalletsWithSystem>(n);
	frame_system::Pallet::<Test>::set_extrinsic_index(0);
}

/// Moves `blocks` blocks on.
pub(crate) fn advance(blocks: u64) {
	run_to_block(System::block_number() + blocks);
}

/// Moves to the first block of the next epoch.
pub(crate) fn next_epoch() {
	let start = pallet_rewards::EpochStart::<Test>::get();
	run_to_block(start + EPOCH);
}

/// Submits a distinct text file by `who`; returns its id.
pub(crate) fn contribute(who: AccountId) -> ContributionId {
	let id = pallet_datanets::NextContributionId::<Test>::get();
	let text = format!("contribution {id} by {who}");
	assert_ok!(Datanets::submit(RuntimeOrigin::signed(who), DATANET, text.into_bytes()));
	id
}

/// Bonds `stake` from `who` for the test datanet.
pub(crate) fn bond(who: AccountId, stake: Balance) {
	assert_ok!(Validation::bond(RuntimeOrigin::signed(who), vec![DATANET], stake));
}

/// Commits `who`'s `ballot` on `contribution`; returns the salt.
pub(crate) fn commit(who: AccountId, contribution: ContributionId, ballot: Ballot) -> [u8; 32] {
	let salt = [who as u8; 32];
	assert_ok!(Validation::commit(
		RuntimeOrigin::signed(who),
		contribution,
		pallet_validation::commitment(&ballot, &salt, &who)
	));
	salt
}
