//! The pallet's logic: channels, settlement by voucher and its split, closing, and the
//! invariants.

use crate::frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{
		fungible::{InspectHold, MutateHold},
		tokens::Precision,
	},
};
use crate::frame_system::{self, pallet_prelude::BlockNumberFor};
use crate::sp_runtime::traits::{Saturating, Verify, Zero};
use crate::*;
use pallet_models::{JobRevenue, Paid};
use pallet_rewards::{RewardSource, RewardsLedger};

impl<T: Config> Pallet<T> {
	/// The bytes a consumer signs for `voucher` on this chain.
	pub fn voucher_payload(voucher: &Voucher<BalanceOf<T>>) -> alloc::vec::Vec<u8> {
		let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
		voucher.signing_payload(genesis.as_ref())
	}

	pub(crate) fn do_open(
		consumer: &T::AccountId,
		operator: &T::AccountId,
		deposit: BalanceOf<T>,
	) -> Result<(ChannelId, BalanceOf<T>), DispatchError> {
		ensure!(consumer != operator, Error::<T>::OwnChannel);
		let price = Prices::<T>::get(operator).ok_or(Error::<T>::NotAnOperator)?;
		ensure!(deposit >= T::MinDeposit::get(), Error::<T>::DepositTooLow);
		T::Currency::hold(&HoldReason::ChannelDeposit.into(), consumer, deposit)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		let channel = NextChannelId::<T>::mutate(|next| {
			let id = *next;
			*next = next.saturating_add(1);
			id
		});
		Channels::<T>::insert(
			channel,
			Channel {
				consumer: consumer.clone(),
				operator: operator.clone(),
				price,
				deposit,
				settled: Default::default(),
				closes_at: None,
			},
		);
		Ok((channel, price))
	}

	pub(crate) fn do_top_up(
		consumer: &T::AccountId,
		channel: ChannelId,
		amount: BalanceOf<T>,
	) -> Result<BalanceOf<T>, DispatchError> {
		ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
		Channels::<T>::try_mutate(channel, |record| {
			let record = record.as_mut().ok_or(Error::<T>::UnknownChannel)?;
			ensure!(record.consumer == *consumer, Error::<T>::NotConsumer);
			ensure!(record.closes_at.is_none(), Error::<T>::ChannelClosing);
			T::Currency::hold(&HoldReason::ChannelDeposit.into(), consumer, amount)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			record.deposit = record.deposit.saturating_add(amount);
			Ok(record.deposit)
		})
	}

	/// Pays what `voucher` adds to the last settled one for its model, split by the rule.
	pub(crate) fn do_settle(
		operator: &T::AccountId,
		voucher: &Voucher<BalanceOf<T>>,
		signature: &T::Signature,
	) -> Result<Settlement<BalanceOf<T>>, DispatchError> {
		let mut record = Channels::<T>::get(voucher.channel).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(record.operator == *operator, Error::<T>::NotOperator);
		if let Some(at) = record.closes_at {
			ensure!(frame_system::Pallet::<T>::block_number() <= at, Error::<T>::ClosingPeriodOver);
		}
		let before = record.settled_for(voucher.job);
		ensure!(voucher.cumulative > before, Error::<T>::VoucherNotNewer);
		let amount = voucher.cumulative.saturating_sub(before);
		ensure!(
			record.settled_total().saturating_add(amount) <= record.deposit,
			Error::<T>::ExceedsDeposit
		);
		let payload = Self::voucher_payload(voucher);
		ensure!(
			signature.verify(&payload[..], &record.consumer)
				|| signature.verify(&wallet_wrapped(&payload)[..], &record.consumer),
			Error::<T>::BadSignature
		);
		let members = match voucher.job {
			Some(job) => T::Jobs::committed_shares(job).ok_or(Error::<T>::JobNotCommitted)?,
			None => 0,
		};
		match record.settled.iter_mut().find(|model| model.job == voucher.job) {
			Some(model) => model.cumulative = voucher.cumulative,
			None => record
				.settled
				.try_push(Settled { job: voucher.job, cumulative: voucher.cumulative })
				.map_err(|_| Error::<T>::TooManyModels)?,
		}

		let consumer = &record.consumer;
		T::Currency::release(
			&HoldReason::ChannelDeposit.into(),
			consumer,
			amount,
			Precision::Exact,
		)?;
		let (operator_part, job_part) = match voucher.job {
			Some(job) => {
				let operator_part = OperatorShare::<T>::get().mul_floor(amount);
				T::Rewards::pay_claimable(
					consumer,
					RewardSource::Inference,
					&[(operator.clone(), operator_part)],
				)?;
				let rest = amount.saturating_sub(operator_part);
				let paid = if rest.is_zero() {
					Paid::default()
				} else {
					T::Jobs::pay_for_job(consumer, job, rest)?
				};
				(operator_part, paid)
			},
			None => {
				T::Rewards::pay_claimable(
					consumer,
					RewardSource::Inference,
					&[(operator.clone(), amount)],
				)?;
				(amount, Paid::default())
			},
		};
		Channels::<T>::insert(voucher.channel, record);
		Ok(Settlement { amount, operator: operator_part, job: job_part, members })
	}

	pub(crate) fn do_close(who: &T::AccountId, channel: ChannelId) -> DispatchResult {
		let mut record = Channels::<T>::get(channel).ok_or(Error::<T>::UnknownChannel)?;
		let now = frame_system::Pallet::<T>::block_number();
		if *who == record.consumer {
			match record.closes_at {
				None => {
					let at = now.saturating_add(T::ClosingPeriod::get());
					record.closes_at = Some(at);
					Channels::<T>::insert(channel, record);
					Self::deposit_event(Event::Closing { channel, at });
					return Ok(());
				},
				Some(at) => ensure!(now > at, Error::<T>::StillClosing),
			}
		} else {
			ensure!(*who == record.operator, Error::<T>::NotAParty);
		}
		let settled = record.settled_total();
		let refunded = record.deposit.saturating_sub(settled);
		T::Currency::release(
			&HoldReason::ChannelDeposit.into(),
			&record.consumer,
			refunded,
			Precision::Exact,
		)?;
		Channels::<T>::remove(channel);
		Self::deposit_event(Event::Closed { channel, settled, refunded });
		Ok(())
	}

	/// What must hold after any sequence of calls:
	/// - every channel settled at most its deposit, each model once, and has a price;
	/// - each consumer's deposit hold is what its channels have not settled;
	/// - no channel has an identifier at or past `NextChannelId`;
	/// - every price is more than zero.
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let next = NextChannelId::<T>::get();
		let mut held: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (id, channel) in Channels::<T>::iter() {
			ensure!(id < next, "a channel's identifier is not below NextChannelId");
			ensure!(!channel.price.is_zero(), "a channel has no price");
			let settled = channel.settled_total();
			ensure!(settled <= channel.deposit, "a channel settled more than its deposit");
			for (index, model) in channel.settled.iter().enumerate() {
				ensure!(
					channel.settled[..index].iter().all(|other| other.job != model.job),
					"a channel lists a model twice"
				);
			}
			let unsettled = channel.deposit.saturating_sub(settled);
			let entry = held.entry(channel.consumer.clone()).or_default();
			*entry = entry.saturating_add(unsettled);
		}
		for (consumer, unsettled) in held {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChannelDeposit.into(), &consumer)
					== unsettled,
				"a consumer's deposit hold differs from what its channels have not settled"
			);
		}
		ensure!(Prices::<T>::iter_values().all(|price| !price.is_zero()), "a price is zero");
		Ok(())
	}
}
