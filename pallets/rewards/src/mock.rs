//! A test runtime: balances, the real datanets and validation pallets, and rewards fed by
//! validation's verdicts, with 30-block epochs.

use crate as pallet_rewards;
use frame_support::{assert_ok, derive_impl, parameter_types};
use pallet_datanets::{Caps, ContributionId, DataKind, DatanetId, Format, FormatSet};
use pallet_validation::Ballot;
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
		Rewards: pallet_rewards,
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

pub(crate) use pallet_validation::config_preludes::{COMMIT_PERIOD, REVEAL_PERIOD};

#[derive_impl(pallet_validation::config_preludes::TestDefaultConfig)]
impl pallet_validation::Config for Test {
	type Currency = Balances;
	type Contributions = Datanets;
	type OnVerdict = Rewards;
}

pub(crate) use pallet_rewards::config_preludes::{test_params, EPOCH, ISSUANCE};

parameter_types! {
	/// Settlement steps per block; tests of paging lower it.
	pub static MaxSteps: u32 = 1_000;
}

#[derive_impl(pallet_rewards::config_preludes::TestDefaultConfig)]
impl pallet_rewards::Config for Test {
	type Currency = Balances;
	type Datanets = Datanets;
	type MaxSettlementSteps = MaxSteps;
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
