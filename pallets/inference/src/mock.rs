//! A test runtime: balances, and the real datanets, rewards and models pallets beside this
//! one, so that a settlement's split reaches real claimable balances and pools. Vouchers are
//! signed with `TestSignature`: a signer's account is its number.

use crate::{self as pallet_inference, Voucher};
use frame_support::{assert_ok, derive_impl, parameter_types};
use pallet_datanets::{
	Caps, ContributionRegistry, ContributionStatus, DataKind, DatanetId, Format, FormatSet,
};
use pallet_models::{JobId, Outcome, Share};
use pallet_rewards::RewardParams;
use pallet_validation::OnVerdict;
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io, sp_runtime};
use provenant_jobspec::{Family, HyperParams};
use sp_runtime::{
	testing::{TestSignature, UintAuthorityId},
	BuildStorage,
};

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
		Rewards: pallet_rewards,
		Models: pallet_models,
		Inference: pallet_inference,
	}
);

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

parameter_types! {
	/// Long epochs that mint nothing, so that pools hold only what is paid in.
	pub RewardsParams: RewardParams<Balance> = RewardParams {
		epoch_length: 1_000,
		issuance_per_datanet: 0,
		..pallet_rewards::config_preludes::test_params()
	};
}

#[derive_impl(pallet_rewards::config_preludes::TestDefaultConfig)]
impl pallet_rewards::Config for Test {
	type Currency = Balances;
	type Datanets = Datanets;
	type DefaultParams = RewardsParams;
}

#[derive_impl(pallet_models::config_preludes::TestDefaultConfig)]
impl pallet_models::Config for Test {
	type Currency = Balances;
	type Datanets = Datanets;
	type Rewards = Rewards;
}

pub(crate) use pallet_inference::config_preludes::{CLOSING_PERIOD, MIN_DEPOSIT};

#[derive_impl(pallet_inference::config_preludes::TestDefaultConfig)]
impl pallet_inference::Config for Test {
	type Currency = Balances;
	type Jobs = Models;
	type Rewards = Rewards;
	type Signature = TestSignature;
	type Signer = UintAuthorityId;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = SignAsConsumer;
}

/// Signs benchmark vouchers as [`CONSUMER`].
#[cfg(feature = "runtime-benchmarks")]
pub(crate) struct SignAsConsumer;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_inference::BenchmarkHelper<AccountId, TestSignature> for SignAsConsumer {
	fn sign(message: &[u8]) -> (AccountId, TestSignature) {
		(CONSUMER, TestSignature(CONSUMER, message.to_vec()))
	}
}

/// Accounts.
pub(crate) const OWNER: AccountId = 1;
pub(crate) const ALICE: AccountId = 2;
pub(crate) const BOB: AccountId = 3;
pub(crate) const BUILDER: AccountId = 4;
pub(crate) const TRAINER: AccountId = 5;
pub(crate) const OPERATOR: AccountId = 6;
pub(crate) const CONSUMER: AccountId = 7;
pub(crate) const STRANGER: AccountId = 8;
pub(crate) const INITIAL_BALANCE: Balance = 1_000_000;

/// The text datanet every test has.
pub(crate) const TEXT: DatanetId = 0;

/// Builds test externalities with funded accounts and a text datanet, at block 1.
pub(crate) fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let balances = [OWNER, ALICE, BOB, BUILDER, TRAINER, OPERATOR, CONSUMER, STRANGER]
		.map(|who| (who, INITIAL_BALANCE))
		.to_vec();
	pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
		.assimilate_storage(&mut storage)
		.unwrap();
	pallet_rewards::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::run_to_block::<AllPalletsWithSystem>(1);
		assert_ok!(Datanets::create(
			RuntimeOrigin::signed(OWNER),
			b"datanet".to_vec(),
			vec![],
			vec![],
			DataKind::Text,
			FormatSet::of(&[Format::Txt]),
			Caps { max_file_bytes: 8 * 1024, daily_bytes: 1 << 30 },
		));
	});
	ext
}

/// Runs `test`, then checks the invariants of every pallet with money in it.
pub(crate) fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		Inference::do_try_state().expect("inference invariants hold");
		Models::do_try_state().expect("models invariants hold");
		Rewards::do_try_state().expect("rewards invariants hold");
	});
}

/// Moves `blocks` blocks on.
pub(crate) fn advance(blocks: u64) {
	System::run_to_block::<AllPalletsWithSystem>(System::block_number() + blocks);
}

/// A job committed by `TRAINER` on two newly accepted texts, Alice's and Bob's, and any
/// accepted before: Alice's shares weigh 100 tokens, Bob's 300.
pub(crate) fn committed_job() -> JobId {
	for who in [ALICE, BOB] {
		let id = pallet_datanets::NextContributionId::<Test>::get();
		let text = format!("accepted text number {id}");
		assert_ok!(Datanets::submit(RuntimeOrigin::signed(who), TEXT, text.into_bytes()));
		assert_ok!(<Datanets as ContributionRegistry<_, _>>::set_status(
			id,
			ContributionStatus::Accepted
		));
		<(Rewards, Models) as OnVerdict<_, _>>::on_verdict(
			id,
			TEXT,
			&who,
			ContributionStatus::Accepted,
			&[],
		);
	}
	let model = pallet_models::NextModelId::<Test>::get();
	assert_ok!(Models::register_model(
		RuntimeOrigin::signed(OWNER),
		Family::Llama,
		b"SmolLM2-135M".to_vec(),
		vec![[1; 32]],
		[2; 32],
		2048,
		vec![],
		vec![],
	));
	let job = pallet_models::NextJobId::<Test>::get();
	let fee = pallet_models::config_preludes::MIN_FEE;
	let params = HyperParams::defaults(Family::Llama);
	assert_ok!(Models::create_job(RuntimeOrigin::signed(BUILDER), model, vec![TEXT], params, fee));
	let bond = pallet_models::config_preludes::MIN_BOND;
	assert_ok!(Models::bond(RuntimeOrigin::signed(TRAINER), bond));
	// A block holds only a few claims' lease ends.
	advance(1);
	assert_ok!(Models::claim(RuntimeOrigin::signed(TRAINER), job));
	frame_system::Pallet::<Test>::set_extrinsic_index(0);
	let adapter = format!("adapter of job {job}").into_bytes();
	assert_ok!(Models::publish_adapter(
		RuntimeOrigin::signed(TRAINER),
		job,
		vec![],
		adapter.clone()
	));
	let shares: Vec<Share> = Models::training_set(job, 0, u32::MAX)
		.iter()
		.zip([100, 300].into_iter().cycle())
		.map(|(member, weight)| Share { contribution: member.entry.contribution, weight })
		.collect();
	let outcome = Outcome {
		adapter: sp_io::hashing::sha2_256(&adapter),
		adapter_size: adapter.len() as u32,
		training_root: pallet_models::Jobs::<Test>::get(job).unwrap().training.root,
		train_loss: 1,
		eval_loss: None,
		tokens: 400,
		steps: 1,
		shares_root: pallet_models::merkle::root_of(
			shares
				.iter()
				.map(|share| pallet_models::merkle::share_leaf(share.contribution, share.weight)),
		),
		attribution: pallet_models::Attribution::Tokens,
	};
	assert_ok!(Models::commit(RuntimeOrigin::signed(TRAINER), job, outcome, shares));
	job
}

/// Sets `OPERATOR`'s price and opens a channel to it from `CONSUMER` with `deposit`.
pub(crate) fn open_channel(deposit: Balance) -> crate::ChannelId {
	if pallet_inference::Prices::<Test>::get(OPERATOR).is_none() {
		assert_ok!(Inference::set_price(RuntimeOrigin::signed(OPERATOR), Some(2)));
	}
	let channel = pallet_inference::NextChannelId::<Test>::get();
	assert_ok!(Inference::open(RuntimeOrigin::signed(CONSUMER), OPERATOR, deposit));
	channel
}

/// `signer`'s signature of `voucher` on this chain.
pub(crate) fn signed_by(signer: AccountId, voucher: &Voucher<Balance>) -> TestSignature {
	TestSignature(signer, Inference::voucher_payload(voucher))
}
