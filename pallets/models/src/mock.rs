//! A test runtime: balances, the real datanets and rewards pallets, and models, with verdicts
//! delivered through `OnVerdict` as the validation pallet delivers them.

use crate::{self as pallet_models, Outcome, Share};
use frame_support::{assert_ok, derive_impl, parameter_types};
use pallet_datanets::{
	Caps, ContributionId, ContributionRegistry, ContributionStatus, DataKind, DatanetId, Format,
	FormatSet,
};
use pallet_rewards::RewardParams;
use pallet_validation::OnVerdict;
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io, sp_runtime};
use provenant_jobspec::{Family, HyperParams};
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
		Rewards: pallet_rewards,
		Models: pallet_models,
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

parameter_types! {
	/// Long epochs that mint nothing, so that pools hold only what jobs pay in.
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

pub(crate) use pallet_models::config_preludes::{
	LEASE, MAX_SHARES, MIN_BOND, MIN_FEE, MODEL_DEPOSIT,
};

#[derive_impl(pallet_models::config_preludes::TestDefaultConfig)]
impl pallet_models::Config for Test {
	type Currency = Balances;
	type Datanets = Datanets;
	type Rewards = Rewards;
}

/// Accounts.
pub(crate) const OWNER: AccountId = 1;
pub(crate) const ALICE: AccountId = 2;
pub(crate) const BOB: AccountId = 3;
pub(crate) const BUILDER: AccountId = 4;
pub(crate) const WORKER: AccountId = 5;
pub(crate) const WORKER2: AccountId = 6;
/// Enough to exist, not to pay.
pub(crate) const POOR: AccountId = 7;
pub(crate) const INITIAL_BALANCE: Balance = 1_000_000;

/// The text datanet (0) and the image datanet (1) every test has.
pub(crate) const TEXT: DatanetId = 0;
pub(crate) const IMAGES: DatanetId = 1;

/// Builds test externalities with funded accounts, a text and an image datanet, at block 1.
pub(crate) fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut balances: Vec<_> =
		[OWNER, ALICE, BOB, BUILDER, WORKER, WORKER2].map(|who| (who, INITIAL_BALANCE)).to_vec();
	balances.push((POOR, 10));
	pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
		.assimilate_storage(&mut storage)
		.unwrap();
	pallet_rewards::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		run_to_block(1);
		for (kind, format) in [(DataKind::Text, Format::Txt), (DataKind::Image, Format::Png)] {
			assert_ok!(Datanets::create(
				RuntimeOrigin::signed(OWNER),
				b"datanet".to_vec(),
				vec![],
				vec![],
				kind,
				FormatSet::of(&[format]),
				Caps { max_file_bytes: 8 * 1024, daily_bytes: 1 << 30 },
			));
		}
	});
	ext
}

/// Runs `test`, then checks the invariants of every pallet with money in it.
pub(crate) fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		Datanets::do_try_state().expect("datanets invariants hold");
		Models::do_try_state().expect("models invariants hold");
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

/// Submits `text` by `who` to the text datanet; returns its id.
pub(crate) fn contribute(who: AccountId, text: &str) -> ContributionId {
	let id = pallet_datanets::NextContributionId::<Test>::get();
	assert_ok!(Datanets::submit(RuntimeOrigin::signed(who), TEXT, text.as_bytes().to_vec()));
	id
}

/// Ends contribution `id` as `status`, telling the pallets as validation's `close` does.
pub(crate) fn judge(id: ContributionId, status: ContributionStatus) {
	let info = <Datanets as ContributionRegistry<_, _>>::contribution_info(id).unwrap();
	assert_ok!(<Datanets as ContributionRegistry<_, _>>::set_status(id, status));
	<(Rewards, Models) as OnVerdict<_, _>>::on_verdict(
		id,
		info.datanet,
		&info.contributor,
		status,
		&[],
	);
}

/// Submits and accepts `text` by `who`; returns its id.
pub(crate) fn accepted(who: AccountId, text: &str) -> ContributionId {
	let id = contribute(who, text);
	judge(id, ContributionStatus::Accepted);
	id
}

/// Registers a LLaMA model of 2,048 positions by `OWNER`; returns its id.
pub(crate) fn register_llama() -> crate::ModelId {
	let id = pallet_models::NextModelId::<Test>::get();
	assert_ok!(Models::register_model(
		RuntimeOrigin::signed(OWNER),
		Family::Llama,
		b"SmolLM2-135M".to_vec(),
		vec![[1; 32]],
		[2; 32],
		2048,
		b"Apache-2.0".to_vec(),
		b"HuggingFaceTB".to_vec(),
	));
	id
}

/// The trainer's defaults for LLaMA.
pub(crate) fn params() -> HyperParams {
	HyperParams::defaults(Family::Llama)
}

/// Creates a job by `BUILDER` on the text datanet with `fee`; returns its id.
pub(crate) fn create_job(model: crate::ModelId, fee: Balance) -> crate::JobId {
	let id = pallet_models::NextJobId::<Test>::get();
	assert_ok!(Models::create_job(
		RuntimeOrigin::signed(BUILDER),
		model,
		vec![TEXT],
		params(),
		fee
	));
	id
}

/// Bonds the minimum for `who`.
pub(crate) fn bond(who: AccountId) {
	assert_ok!(Models::bond(RuntimeOrigin::signed(who), MIN_BOND));
}

/// An adapter's files.
pub(crate) const ADAPTER: &[u8] = b"adapter weights";
pub(crate) const ADAPTER_CONFIG: &[u8] = b"{\"peft_type\": \"LORA\"}";

/// Publishes `ADAPTER` for `job` as `who`.
pub(crate) fn publish(who: AccountId, job: crate::JobId) {
	assert_ok!(Models::publish_adapter(
		RuntimeOrigin::signed(who),
		job,
		ADAPTER_CONFIG.to_vec(),
		ADAPTER.to_vec()
	));
}

/// The shares a worker would commit for `job`: `weights` in training-set order.
pub(crate) fn shares(job: crate::JobId, weights: &[u64]) -> Vec<Share> {
	let members = Models::training_set(job, 0, u32::MAX);
	assert_eq!(members.len(), weights.len(), "one weight per member");
	members
		.iter()
		.zip(weights)
		.map(|(member, weight)| Share { contribution: member.entry.contribution, weight: *weight })
		.collect()
}

/// The outcome a worker would commit for `job` with `shares` and the published adapter.
pub(crate) fn outcome(job: crate::JobId, shares: &[Share]) -> Outcome {
	let training_root = pallet_models::Jobs::<Test>::get(job).unwrap().training.root;
	Outcome {
		adapter: sp_io::hashing::sha2_256(ADAPTER),
		adapter_size: ADAPTER.len() as u32,
		training_root,
		train_loss: 1_500_000,
		eval_loss: Some(1_700_000),
		tokens: 4_096,
		steps: 8,
		shares_root: crate::merkle::root_of(
			shares.iter().map(|share| crate::merkle::share_leaf(share.contribution, share.weight)),
		),
		attribution: crate::Attribution::Tokens,
	}
}
