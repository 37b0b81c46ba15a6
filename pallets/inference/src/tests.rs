//! Unit tests: every call's effect and each of its refusals, a settlement's split to the unit,
//! vouchers that cannot be spent twice, on another channel or past the deposit, and closing
//! from either side. Every test ends with the pallets' invariants checked
//! (`mock::build_and_execute`).

use crate::{mock::*, *};
use frame_support::{
	assert_noop, assert_ok,
	traits::fungible::{Inspect, InspectHold},
};
use polkadot_sdk::{
	frame_support,
	sp_runtime::{testing::TestSignature, DispatchError, Perbill},
};

fn signed(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn held(who: AccountId) -> Balance {
	Balances::balance_on_hold(&HoldReason::ChannelDeposit.into(), &who)
}

/// What `who` was credited by paid inference.
fn claimable(who: AccountId) -> Balance {
	pallet_rewards::Claimable::<Test>::get(who).inference
}

fn voucher(
	channel: ChannelId,
	job: Option<pallet_models::JobId>,
	cumulative: Balance,
) -> Voucher<Balance> {
	Voucher { channel, job, cumulative }
}

/// Settles `voucher` as `OPERATOR`, signed by `CONSUMER`.
fn settle(voucher: Voucher<Balance>) -> frame_support::dispatch::DispatchResultWithPostInfo {
	Inference::settle(signed(OPERATOR), voucher, signed_by(CONSUMER, &voucher))
}

mod prices {
	use super::*;

	#[test]
	fn an_operator_sets_and_withdraws_its_price() {
		build_and_execute(|| {
			assert_ok!(Inference::set_price(signed(OPERATOR), Some(5)));
			assert_eq!(Prices::<Test>::get(OPERATOR), Some(5));
			System::assert_last_event(
				Event::PriceSet { operator: OPERATOR, price: Some(5) }.into(),
			);
			assert_ok!(Inference::set_price(signed(OPERATOR), None));
			assert_eq!(Prices::<Test>::get(OPERATOR), None);
			assert_noop!(
				Inference::open(signed(CONSUMER), OPERATOR, MIN_DEPOSIT),
				Error::<Test>::NotAnOperator
			);
			assert_noop!(Inference::set_price(signed(OPERATOR), Some(0)), Error::<Test>::ZeroPrice);
		});
	}

	#[test]
	fn a_channel_keeps_the_price_it_opened_with() {
		build_and_execute(|| {
			let channel = open_channel(MIN_DEPOSIT);
			assert_ok!(Inference::set_price(signed(OPERATOR), Some(9)));
			assert_eq!(Channels::<Test>::get(channel).unwrap().price, 2);
			let later = open_channel(MIN_DEPOSIT);
			assert_eq!(Channels::<Test>::get(later).unwrap().price, 9);
		});
	}
}

mod channels {
	use super::*;

	#[test]
	fn opening_holds_the_deposit_and_records_the_deal() {
		build_and_execute(|| {
			let free_before = Balances::balance(&CONSUMER);
			let channel = open_channel(5_000);
			let record = Channels::<Test>::get(channel).unwrap();
			assert_eq!((record.consumer, record.operator), (CONSUMER, OPERATOR));
			assert_eq!((record.price, record.deposit, record.closes_at), (2, 5_000, None));
			assert!(record.settled.is_empty());
			assert_eq!(held(CONSUMER), 5_000);
			assert_eq!(Balances::balance(&CONSUMER), free_before - 5_000);
			System::assert_last_event(
				Event::ChannelOpened {
					channel,
					consumer: CONSUMER,
					operator: OPERATOR,
					price: 2,
					deposit: 5_000,
				}
				.into(),
			);
			assert_eq!(open_channel(MIN_DEPOSIT), channel + 1, "identifiers are never reused");
		});
	}

	#[test]
	fn bad_openings_are_refused_by_name_and_change_nothing() {
		build_and_execute(|| {
			assert_noop!(
				Inference::open(signed(CONSUMER), OPERATOR, MIN_DEPOSIT),
				Error::<Test>::NotAnOperator
			);
			assert_ok!(Inference::set_price(signed(OPERATOR), Some(2)));
			assert_noop!(
				Inference::open(signed(OPERATOR), OPERATOR, MIN_DEPOSIT),
				Error::<Test>::OwnChannel
			);
			assert_noop!(
				Inference::open(signed(CONSUMER), OPERATOR, MIN_DEPOSIT - 1),
				Error::<Test>::DepositTooLow
			);
			assert_noop!(
				Inference::open(signed(CONSUMER), OPERATOR, INITIAL_BALANCE * 2),
				Error::<Test>::InsufficientBalance
			);
		});
	}

	#[test]
	fn only_the_consumer_tops_up_an_open_channel() {
		build_and_execute(|| {
			let channel = open_channel(MIN_DEPOSIT);
			assert_ok!(Inference::top_up(signed(CONSUMER), channel, 500));
			assert_eq!(Channels::<Test>::get(channel).unwrap().deposit, MIN_DEPOSIT + 500);
			assert_eq!(held(CONSUMER), MIN_DEPOSIT + 500);
			System::assert_last_event(
				Event::ToppedUp { channel, deposit: MIN_DEPOSIT + 500 }.into(),
			);
			assert_noop!(
				Inference::top_up(signed(STRANGER), channel, 1),
				Error::<Test>::NotConsumer
			);
			assert_noop!(
				Inference::top_up(signed(CONSUMER), channel, 0),
				Error::<Test>::ZeroAmount
			);
			assert_noop!(
				Inference::top_up(signed(CONSUMER), channel, INITIAL_BALANCE),
				Error::<Test>::InsufficientBalance
			);
			assert_noop!(
				Inference::top_up(signed(CONSUMER), channel + 1, 1),
				Error::<Test>::UnknownChannel
			);
			assert_ok!(Inference::close(signed(CONSUMER), channel));
			assert_noop!(
				Inference::top_up(signed(CONSUMER), channel, 1),
				Error::<Test>::ChannelClosing
			);
		});
	}
}

mod settlement {
	use super::*;

	#[test]
	fn a_voucher_pays_the_operator_then_the_job_exactly_by_the_published_rule() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			let before = (claimable(TRAINER), claimable(ALICE), claimable(BOB));
			let pool_before = pallet_rewards::Pools::<Test>::get(TEXT);
			let free_before = Balances::balance(&CONSUMER);
			assert_ok!(settle(voucher(channel, Some(job), 1_000)));
			// Operator 20% = 200; the other 800 as the job's fee: trainer 60% = 480, pools
			// 10% = 80, contributors 30% = 240 by their shares 100:300, so 60 and 180.
			assert_eq!(claimable(OPERATOR), 200);
			assert_eq!(claimable(TRAINER), before.0 + 480);
			assert_eq!((claimable(ALICE), claimable(BOB)), (before.1 + 60, before.2 + 180));
			assert_eq!(pallet_rewards::Pools::<Test>::get(TEXT), pool_before + 80);
			// The payment came out of the deposit, not the consumer's free balance.
			assert_eq!(held(CONSUMER), 9_000);
			assert_eq!(Balances::balance(&CONSUMER), free_before);
			System::assert_last_event(
				Event::Settled {
					channel,
					job: Some(job),
					cumulative: 1_000,
					amount: 1_000,
					operator_paid: 200,
					trainer_paid: 480,
					pools_paid: 80,
					contributors_paid: 240,
				}
				.into(),
			);
			let record = Channels::<Test>::get(channel).unwrap();
			assert_eq!(
				record.settled.to_vec(),
				vec![Settled { job: Some(job), cumulative: 1_000 }]
			);
		});
	}

	#[test]
	fn each_voucher_pays_only_its_rise_and_none_pays_twice() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			assert_ok!(settle(voucher(channel, Some(job), 1_000)));
			assert_noop!(
				settle(voucher(channel, Some(job), 1_000)),
				Error::<Test>::VoucherNotNewer
			);
			assert_noop!(settle(voucher(channel, Some(job), 999)), Error::<Test>::VoucherNotNewer);
			assert_ok!(settle(voucher(channel, Some(job), 1_500)));
			// 20% of the 500 rise.
			assert_eq!(claimable(OPERATOR), 300);
			assert_eq!(held(CONSUMER), 8_500);
		});
	}

	#[test]
	fn the_base_model_pays_the_operator_alone() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			let trainer_before = claimable(TRAINER);
			assert_ok!(settle(voucher(channel, None, 700)));
			assert_eq!((claimable(OPERATOR), claimable(TRAINER)), (700, trainer_before));
			// Models are settled apart: the job's first voucher still pays in full.
			assert_ok!(settle(voucher(channel, Some(job), 100)));
			assert_eq!(claimable(OPERATOR), 720);
			assert_eq!(Channels::<Test>::get(channel).unwrap().settled_total(), 800);
		});
	}

	#[test]
	fn vouchers_never_pay_past_the_deposit() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(MIN_DEPOSIT);
			assert_noop!(
				settle(voucher(channel, Some(job), MIN_DEPOSIT + 1)),
				Error::<Test>::ExceedsDeposit
			);
			assert_ok!(settle(voucher(channel, Some(job), 600)));
			// Two models together may not pay more than the one deposit.
			assert_noop!(settle(voucher(channel, None, 401)), Error::<Test>::ExceedsDeposit);
			assert_ok!(settle(voucher(channel, None, 400)));
			assert_eq!(held(CONSUMER), 0);
		});
	}

	#[test]
	fn only_the_consumers_signature_over_this_voucher_on_this_chain_pays() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			let other = open_channel(10_000);
			let good = voucher(channel, Some(job), 1_000);
			let bad_signature = |signature| {
				assert_noop!(
					Inference::settle(signed(OPERATOR), good, signature),
					Error::<Test>::BadSignature
				);
			};
			// Signed by someone else.
			bad_signature(signed_by(STRANGER, &good));
			// Signed for another channel, another model, or a smaller amount.
			bad_signature(signed_by(CONSUMER, &voucher(other, Some(job), 1_000)));
			bad_signature(signed_by(CONSUMER, &voucher(channel, None, 1_000)));
			bad_signature(signed_by(CONSUMER, &voucher(channel, Some(job), 10)));
			// Signed for another chain.
			bad_signature(TestSignature(CONSUMER, good.signing_payload(&[7; 32])));
			// Wrapped otherwise than browser wallets wrap, or only half wrapped.
			let payload = Inference::voucher_payload(&good);
			bad_signature(TestSignature(CONSUMER, [b"<Bytes>", &payload[..]].concat()));
			bad_signature(TestSignature(
				CONSUMER,
				[b"<bytes>", &payload[..], b"</bytes>"].concat(),
			));
			assert_ok!(Inference::settle(signed(OPERATOR), good, signed_by(CONSUMER, &good)));
			// A browser wallet's signature, over the payload wrapped in <Bytes>…</Bytes>, pays too.
			let next = voucher(channel, Some(job), 2_000);
			let wrapped = wallet_wrapped(&Inference::voucher_payload(&next));
			assert!(
				wrapped.starts_with(b"<Bytes>provenant/voucher") && wrapped.ends_with(b"</Bytes>")
			);
			assert_ok!(Inference::settle(signed(OPERATOR), next, TestSignature(CONSUMER, wrapped)));
		});
	}

	#[test]
	fn bad_settlements_are_refused_by_name_and_change_nothing() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			let good = voucher(channel, Some(job), 1_000);
			let signature = signed_by(CONSUMER, &good);
			for who in [CONSUMER, STRANGER] {
				assert_noop!(
					Inference::settle(signed(who), good, signature.clone()),
					Error::<Test>::NotOperator
				);
			}
			let unknown = voucher(channel + 1, Some(job), 1_000);
			assert_noop!(settle(unknown), Error::<Test>::UnknownChannel);
			// A job that was never committed, or does not exist.
			let open_job = pallet_models::NextJobId::<Test>::get();
			assert_ok!(Models::create_job(
				signed(BUILDER),
				0,
				vec![TEXT],
				provenant_jobspec::HyperParams::defaults(provenant_jobspec::Family::Llama),
				pallet_models::config_preludes::MIN_FEE,
			));
			for job in [open_job, open_job + 1] {
				assert_noop!(
					settle(voucher(channel, Some(job), 1_000)),
					Error::<Test>::JobNotCommitted
				);
			}
		});
	}

	#[test]
	fn a_channel_pays_for_at_most_sixteen_models() {
		build_and_execute(|| {
			let channel = open_channel(10_000);
			assert_ok!(settle(voucher(channel, None, 1)));
			for _ in 1..MAX_MODELS_PER_CHANNEL {
				let job = committed_job();
				assert_ok!(settle(voucher(channel, Some(job), 1)));
			}
			let one_more = committed_job();
			assert_noop!(settle(voucher(channel, Some(one_more), 1)), Error::<Test>::TooManyModels);
		});
	}

	#[test]
	fn root_sets_the_operators_part_for_later_settlements() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			assert_noop!(
				Inference::set_operator_share(signed(OPERATOR), Perbill::from_percent(90)),
				DispatchError::BadOrigin
			);
			assert_ok!(Inference::set_operator_share(
				RuntimeOrigin::root(),
				Perbill::from_percent(50)
			));
			System::assert_last_event(
				Event::OperatorShareChanged { share: Perbill::from_percent(50) }.into(),
			);
			assert_ok!(settle(voucher(channel, Some(job), 1_000)));
			assert_eq!(claimable(OPERATOR), 500);
		});
	}
}

mod closing {
	use super::*;

	#[test]
	fn the_operator_closes_at_once_and_the_rest_goes_back() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			assert_ok!(settle(voucher(channel, Some(job), 1_000)));
			let free_before = Balances::balance(&CONSUMER);
			assert_ok!(Inference::close(signed(OPERATOR), channel));
			assert_eq!(Channels::<Test>::get(channel), None);
			assert_eq!(held(CONSUMER), 0);
			assert_eq!(Balances::balance(&CONSUMER), free_before + 9_000);
			System::assert_last_event(
				Event::Closed { channel, settled: 1_000, refunded: 9_000 }.into(),
			);
			assert_noop!(settle(voucher(channel, Some(job), 2_000)), Error::<Test>::UnknownChannel);
		});
	}

	#[test]
	fn the_consumer_closes_after_a_period_the_operator_may_still_settle_in() {
		build_and_execute(|| {
			let job = committed_job();
			let channel = open_channel(10_000);
			assert_noop!(Inference::close(signed(STRANGER), channel), Error::<Test>::NotAParty);
			assert_ok!(Inference::close(signed(CONSUMER), channel));
			let at = System::block_number() + CLOSING_PERIOD;
			assert_eq!(Channels::<Test>::get(channel).unwrap().closes_at, Some(at));
			System::assert_last_event(Event::Closing { channel, at }.into());
			assert_noop!(Inference::close(signed(CONSUMER), channel), Error::<Test>::StillClosing);
			advance(CLOSING_PERIOD);
			// The last block of the period: the operator's last vouchers still pay.
			assert_ok!(settle(voucher(channel, Some(job), 1_000)));
			assert_noop!(Inference::close(signed(CONSUMER), channel), Error::<Test>::StillClosing);
			advance(1);
			assert_noop!(
				settle(voucher(channel, Some(job), 2_000)),
				Error::<Test>::ClosingPeriodOver
			);
			let free_before = Balances::balance(&CONSUMER);
			assert_ok!(Inference::close(signed(CONSUMER), channel));
			assert_eq!(Balances::balance(&CONSUMER), free_before + 9_000);
			assert_eq!((held(CONSUMER), Channels::<Test>::get(channel)), (0, None));
		});
	}
}
