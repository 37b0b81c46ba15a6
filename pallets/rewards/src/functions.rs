//! The pallet's logic: the epoch clock, recording verdicts, paged settlement, and queries.

use crate::frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{fungible::Mutate, tokens::Preservation},
};
use crate::frame_system::pallet_prelude::BlockNumberFor;
use crate::sp_arithmetic::{
	helpers_128bit::multiply_by_rational_with_rounding,
	traits::{Saturating, Zero},
	FixedU128, Perbill, Rounding,
};
use crate::sp_runtime::SaturatedConversion;
use crate::*;
use pallet_datanets::{ContributionId, ContributionRegistry, ContributionStatus};
use pallet_validation::OnVerdict;

/// Settlement steps done in one block, by kind.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct SettlementSteps {
	/// Fading standings re-ranked.
	pub(crate) reranked: u32,
	/// Datanet pools split.
	pub(crate) opened: u32,
	/// Contributors credited.
	pub(crate) contributors: u32,
	/// Validators credited.
	pub(crate) validators: u32,
	/// Pots closed.
	pub(crate) closed: u32,
}

impl SettlementSteps {
	fn count(&mut self, phase: SettlementPhase, done: u32) {
		let counter = match phase {
			SettlementPhase::Rerank => &mut self.reranked,
			SettlementPhase::OpenPots => &mut self.opened,
			SettlementPhase::PayContributors => &mut self.contributors,
			SettlementPhase::PayValidators => &mut self.validators,
			SettlementPhase::ClosePots => &mut self.closed,
		};
		*counter += done;
	}

	fn total(&self) -> u32 {
		self.reranked + self.opened + self.contributors + self.validators + self.closed
	}
}

/// `amount × part / whole`, rounded down; zero when `whole` is zero.
fn share_of<Balance: crate::sp_runtime::traits::AtLeast32BitUnsigned + Copy>(
	amount: Balance,
	part: u128,
	whole: u128,
) -> Balance {
	if whole == 0 {
		return Zero::zero();
	}
	multiply_by_rational_with_rounding(amount.saturated_into(), part, whole, Rounding::Down)
		.unwrap_or_default()
		.saturated_into()
}

impl<T: Config> Pallet<T> {
	/// The published rules.
	pub fn params() -> ParamsOf<T> {
		CurrentParams::<T>::get()
	}

	/// Checks the rules' invariants.
	pub(crate) fn ensure_params(params: &ParamsOf<T>) -> DispatchResult {
		let total = params.contributors_share.deconstruct() as u64
			+ params.validators_share.deconstruct() as u64
			+ params.owner_share.deconstruct() as u64;
		let sane = params.epoch_length > 0
			&& params.rejection_half_life > 0
			&& total == Perbill::one().deconstruct() as u64;
		ensure!(sane, Error::<T>::BadParams);
		Ok(())
	}

	/// Starts the next epoch at `now` if the current one has run its length.
	pub(crate) fn advance_epoch(now: BlockNumberFor<T>) {
		let length: BlockNumberFor<T> = Self::params().epoch_length.into();
		if now < EpochStart::<T>::get().saturating_add(length) {
			return;
		}
		let epoch = CurrentEpoch::<T>::mutate(|epoch| {
			*epoch = epoch.saturating_add(1);
			*epoch
		});
		EpochStart::<T>::put(now);
		Self::deposit_event(Event::EpochStarted { epoch });
	}

	/// `standing.rejected` decayed to `epoch`.
	fn decay(standing: &mut StandingOf<T>, epoch: EpochIndex, half_life: u32) {
		let age = epoch.saturating_sub(standing.as_of);
		if age > 0 {
			standing.rejected =
				standing.rejected.saturating_mul(score::decay_factor(age, half_life));
			standing.as_of = epoch;
		}
	}

	/// Counts a verdict into `contributor`'s standing, its rank and the epoch's tally, and
	/// credits the stake that agreed with it. Constant work per agreeing validator.
	pub(crate) fn record_verdict(
		datanet: DatanetId,
		contributor: &T::AccountId,
		status: ContributionStatus,
		agreeing: &[(T::AccountId, BalanceOf<T>)],
	) {
		let accepted = match status {
			ContributionStatus::Accepted => true,
			ContributionStatus::Rejected => false,
			_ => return,
		};
		let epoch = CurrentEpoch::<T>::get();
		let previous = Standings::<T>::get(datanet, contributor);
		let was_fading = previous.as_ref().is_some_and(Self::is_fading);
		let old_key = previous.as_ref().map(Self::key_of);
		let mut standing = previous.unwrap_or_default();
		Self::decay(&mut standing, epoch, Self::params().rejection_half_life);
		if accepted {
			standing.accepted = standing.accepted.saturating_add(1);
		} else {
			standing.rejected = standing.rejected.saturating_add(FixedU128::from_u32(1));
		}
		let score = score::wilson_lower_bound(standing.accepted, standing.rejected);
		standing.score = score;
		standing.ranked_at = epoch;
		match (Self::is_fading(&standing), was_fading) {
			(true, false) => Fading::<T>::insert(datanet, contributor, ()),
			(false, true) => Fading::<T>::remove(datanet, contributor),
			_ => {},
		}
		if old_key.is_none() {
			StandingIn::<T>::insert(contributor, datanet, ());
		}
		Self::place(datanet, contributor, old_key, Self::key_of(&standing));
		Standings::<T>::insert(datanet, contributor, standing);

		let mut tally = Tallies::<T>::get(epoch, datanet);
		tally.verdicts = tally.verdicts.saturating_add(1);
		ContributorShares::<T>::mutate_exists((epoch, datanet, contributor), |share| {
			// A contributor with only rejections this epoch has nothing to be paid for.
			if share.is_none() && !accepted {
				return;
			}
			let mut updated = share.unwrap_or_default();
			tally.contributor_weight = tally.contributor_weight.saturating_sub(updated.weight());
			updated.accepted = updated.accepted.saturating_add(accepted as u32);
			updated.score = score;
			tally.contributor_weight = tally.contributor_weight.saturating_add(updated.weight());
			*share = Some(updated);
		});
		for (validator, stake) in agreeing {
			ValidatorShares::<T>::mutate((epoch, datanet, validator), |total| {
				*total = total.saturating_add(*stake)
			});
			tally.agreeing_stake = tally.agreeing_stake.saturating_add(*stake);
		}
		Tallies::<T>::insert(epoch, datanet, tally);
	}

	/// Does up to `budget` steps of the oldest finished epoch's payouts, moving on to the
	/// next finished epoch when one is done.
	pub(crate) fn settle(budget: u32) -> SettlementSteps {
		let mut steps = SettlementSteps::default();
		loop {
			let left = budget.saturating_sub(steps.total());
			let epoch = Unsettled::<T>::get();
			if left == 0 || epoch >= CurrentEpoch::<T>::get() {
				return steps;
			}
			let phase = Phase::<T>::get();
			let (done, finished) = match phase {
				SettlementPhase::Rerank => Self::rerank(left),
				SettlementPhase::OpenPots => Self::open_pots(epoch, left),
				SettlementPhase::PayContributors => Self::pay_contributors(epoch, left),
				SettlementPhase::PayValidators => Self::pay_validators(epoch, left),
				SettlementPhase::ClosePots => Self::close_pots(epoch, left),
			};
			steps.count(phase, done);
			// An unfinished phase has used the whole budget.
			if !finished {
				return steps;
			}
			match phase.next() {
				Some(next) => Phase::<T>::put(next),
				None => {
					Phase::<T>::kill();
					Unsettled::<T>::put(epoch.saturating_add(1));
					Self::deposit_event(Event::EpochSettled { epoch });
					// One epoch per block bounds the phase changes `on_initialize_idle` pays for.
					return steps;
				},
			}
		}
	}

	/// Splits the pool of up to `limit` datanets active in `epoch`: mints their issuance,
	/// credits the owner, and sets aside the contributors' and validators' parts. Returns the
	/// datanets done and whether none is left.
	pub(crate) fn open_pots(epoch: EpochIndex, limit: u32) -> (u32, bool) {
		let params = Self::params();
		let pot_account = Self::account_id();
		let mut tallies = Tallies::<T>::drain_prefix(epoch);
		let mut done = 0;
		while done < limit {
			let Some((datanet, tally)) = tallies.next() else { return (done, true) };
			done += 1;
			let minted = if tally.verdicts > 0 {
				T::Currency::mint_into(&pot_account, params.issuance_per_datanet)
					.unwrap_or_default()
			} else {
				Zero::zero()
			};
			let pool = Pools::<T>::get(datanet).saturating_add(minted);
			let contributors = if tally.contributor_weight > 0 {
				params.contributors_share.mul_floor(pool)
			} else {
				Zero::zero()
			};
			let validators = if !tally.agreeing_stake.is_zero() {
				params.validators_share.mul_floor(pool)
			} else {
				Zero::zero()
			};
			let owner = match T::Datanets::datanet_owner(datanet) {
				Some(owner) => {
					let cut = params.owner_share.mul_floor(pool);
					Self::credit(&owner, RewardSource::Ownership, cut);
					cut
				},
				None => Zero::zero(),
			};
			let unpaid = contributors.saturating_add(validators);
			Pools::<T>::insert(datanet, pool.saturating_sub(unpaid).saturating_sub(owner));
			if !unpaid.is_zero() {
				Pots::<T>::insert(epoch, datanet, Pot { contributors, validators, unpaid, tally });
			}
			Self::deposit_event(Event::PoolSplit {
				epoch,
				datanet,
				minted,
				contributors,
				validators,
				owner,
			});
		}
		(done, false)
	}

	/// Credits up to `limit` contributors of `epoch` their part: the contributors' pot ×
	/// (accepted × score) / Σ (accepted × score).
	pub(crate) fn pay_contributors(epoch: EpochIndex, limit: u32) -> (u32, bool) {
		let mut shares = ContributorShares::<T>::drain_prefix((epoch,));
		let mut done = 0;
		while done < limit {
			let Some(((datanet, who), share)) = shares.next() else { return (done, true) };
			done += 1;
			let Some(mut pot) = Pots::<T>::get(epoch, datanet) else { continue };
			let amount = share_of(pot.contributors, share.weight(), pot.tally.contributor_weight);
			pot.unpaid = pot.unpaid.saturating_sub(amount);
			Pots::<T>::insert(epoch, datanet, pot);
			Self::credit(&who, RewardSource::Contributions, amount);
			Standings::<T>::mutate(datanet, &who, |standing| {
				if let Some(standing) = standing {
					standing.earned = standing.earned.saturating_add(amount);
				}
			});
		}
		(done, false)
	}

	/// Credits up to `limit` validators of `epoch` their part: the validators' pot × stake
	/// that agreed / Σ stake that agreed.
	pub(crate) fn pay_validators(epoch: EpochIndex, limit: u32) -> (u32, bool) {
		let mut shares = ValidatorShares::<T>::drain_prefix((epoch,));
		let mut done = 0;
		while done < limit {
			let Some(((datanet, who), stake)) = shares.next() else { return (done, true) };
			done += 1;
			let Some(mut pot) = Pots::<T>::get(epoch, datanet) else { continue };
			let amount = share_of(
				pot.validators,
				stake.saturated_into(),
				pot.tally.agreeing_stake.saturated_into(),
			);
			pot.unpaid = pot.unpaid.saturating_sub(amount);
			Pots::<T>::insert(epoch, datanet, pot);
			Self::credit(&who, RewardSource::Validation, amount);
		}
		(done, false)
	}

	/// Returns the rounding dust of up to `limit` of `epoch`'s pots to their pools.
	pub(crate) fn close_pots(epoch: EpochIndex, limit: u32) -> (u32, bool) {
		let mut pots = Pots::<T>::drain_prefix(epoch);
		let mut done = 0;
		while done < limit {
			let Some((datanet, pot)) = pots.next() else { return (done, true) };
			done += 1;
			Pools::<T>::mutate(datanet, |pool| *pool = pool.saturating_add(pot.unpaid));
		}
		(done, false)
	}

	fn credit(who: &T::AccountId, source: RewardSource, amount: BalanceOf<T>) {
		if !amount.is_zero() {
			Claimable::<T>::mutate(who, |claims| claims.credit(source, amount));
		}
	}

	/// Moves `amount` from `who` into `datanet`'s pool.
	pub fn do_fund(who: &T::AccountId, datanet: DatanetId, amount: BalanceOf<T>) -> DispatchResult {
		ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
		ensure!(T::Datanets::datanet_owner(datanet).is_some(), Error::<T>::UnknownDatanet);
		T::Currency::transfer(who, &Self::account_id(), amount, Preservation::Preserve)?;
		Pools::<T>::mutate(datanet, |pool| *pool = pool.saturating_add(amount));
		Ok(())
	}

	/// The epoch clock and how far settlement has got.
	pub fn epoch_status() -> EpochStatus<BlockNumberFor<T>> {
		EpochStatus {
			epoch: CurrentEpoch::<T>::get(),
			started_at: EpochStart::<T>::get(),
			length: Self::params().epoch_length,
			unsettled: Unsettled::<T>::get(),
		}
	}

	/// The pot account holds at least every pool, unpaid pot and claimable balance.
	/// Public so that other pallets' tests check it too.
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		let owed = Self::owed();
		ensure!(
			<T::Currency as crate::frame_support::traits::fungible::Inspect<_>>::balance(
				&Self::account_id()
			) >= owed,
			"the pot account holds less than the pools and claims it owes"
		);
		ensure!(Unsettled::<T>::get() <= CurrentEpoch::<T>::get(), "settlement ran ahead");
		Self::check_ranking()
	}

	/// Σ pools + unpaid pots + claimable balances.
	pub(crate) fn owed() -> BalanceOf<T> {
		let pools =
			Pools::<T>::iter_values().fold(Zero::zero(), |s: BalanceOf<T>, v| s.saturating_add(v));
		let pots = Pots::<T>::iter_values().fold(pools, |s, pot| s.saturating_add(pot.unpaid));
		Claimable::<T>::iter_values().fold(pots, |s, claims| s.saturating_add(claims.total()))
	}
}

impl<T: Config> OnVerdict<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn on_verdict(
		_: ContributionId,
		datanet: DatanetId,
		contributor: &T::AccountId,
		status: ContributionStatus,
		agreeing: &[(T::AccountId, BalanceOf<T>)],
	) {
		Self::record_verdict(datanet, contributor, status, agreeing)
	}

	fn weight(agreeing: u32) -> Weight {
		T::WeightInfo::record_verdict(agreeing)
	}
}

impl<T: Config> RewardsLedger<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn fund_pool(payer: &T::AccountId, datanet: DatanetId, amount: BalanceOf<T>) -> DispatchResult {
		Self::do_fund(payer, datanet, amount)
	}

	fn pay_claimable(
		payer: &T::AccountId,
		source: RewardSource,
		credits: &[(T::AccountId, BalanceOf<T>)],
	) -> DispatchResult {
		let total = credits
			.iter()
			.fold(BalanceOf::<T>::zero(), |total, (_, amount)| total.saturating_add(*amount));
		if total.is_zero() {
			return Ok(());
		}
		T::Currency::transfer(payer, &Self::account_id(), total, Preservation::Preserve)?;
		for (who, amount) in credits {
			Self::credit(who, source, *amount);
		}
		Ok(())
	}
}
