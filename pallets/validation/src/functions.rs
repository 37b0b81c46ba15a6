//! The pallet's logic: `do_*` helpers that take no origin, so they can be tested directly.

use crate::frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{
		fungible::MutateHold,
		tokens::{Fortitude, Precision},
	},
};
use crate::frame_system::pallet_prelude::BlockNumberFor;
use crate::sp_runtime::{
	traits::{Saturating, Zero},
	Perbill,
};
use crate::*;
use alloc::vec::Vec;
use pallet_datanets::ContributionRegistry;

/// The windows of one contribution's vote.
struct Windows<BlockNumber> {
	/// Last block of the commit window.
	commit_end: BlockNumber,
	/// Last block of the reveal window.
	reveal_end: BlockNumber,
}

impl<T: Config> Pallet<T> {
	/// The published rules.
	pub fn params() -> ParamsOf<T> {
		CurrentParams::<T>::get()
	}

	/// `close` with `voters` commitments, the rewards hook included.
	pub(crate) fn close_weight(voters: u32) -> Weight {
		T::WeightInfo::close(voters).saturating_add(T::OnVerdict::weight(voters))
	}

	/// Checks the rules' invariants.
	pub(crate) fn ensure_params(params: &ParamsOf<T>) -> DispatchResult {
		let sane = !params.commit_period.is_zero()
			&& !params.reveal_period.is_zero()
			&& params.quorum > 0
			&& params.quorum <= T::MaxVoters::get()
			&& params.supermajority > Perbill::from_percent(50);
		ensure!(sane, Error::<T>::BadParams);
		Ok(())
	}

	/// A non-empty list of distinct datanets, within `MaxDatanetsPerValidator`.
	pub(crate) fn bounded_datanets(
		datanets: Vec<DatanetId>,
	) -> Result<BoundedVec<DatanetId, T::MaxDatanetsPerValidator>, DispatchError> {
		ensure!(!datanets.is_empty(), Error::<T>::NoDatanets);
		let mut sorted = datanets.clone();
		sorted.sort_unstable();
		sorted.dedup();
		ensure!(sorted.len() == datanets.len(), Error::<T>::BadDatanetList);
		BoundedVec::try_from(datanets).map_err(|_| Error::<T>::BadDatanetList.into())
	}

	/// The stake a validator serving `datanets` datanets must keep bonded.
	fn minimum_stake(params: &ParamsOf<T>, datanets: usize) -> BalanceOf<T> {
		params.min_stake_per_datanet.saturating_mul((datanets as u32).into())
	}

	/// Holds `amount` more from `who` and sets its datanets; returns its bonded total.
	pub(crate) fn do_bond(
		who: &T::AccountId,
		datanets: BoundedVec<DatanetId, T::MaxDatanetsPerValidator>,
		amount: BalanceOf<T>,
	) -> Result<BalanceOf<T>, DispatchError> {
		let mut validator = Validators::<T>::get(who).unwrap_or_else(|| Validator {
			bonded: Zero::zero(),
			datanets: BoundedVec::default(),
			unbonding: Zero::zero(),
			unlocks_at: Zero::zero(),
		});
		validator.bonded = validator.bonded.saturating_add(amount);
		ensure!(
			validator.bonded >= Self::minimum_stake(&Self::params(), datanets.len()),
			Error::<T>::BelowMinimumStake
		);
		if !amount.is_zero() {
			T::Currency::hold(&HoldReason::ValidatorStake.into(), who, amount)?;
		}
		validator.datanets = datanets;
		let bonded = validator.bonded;
		Validators::<T>::insert(who, validator);
		Ok(bonded)
	}

	/// Moves `amount` from bonded to unbonding; returns when it unlocks.
	pub(crate) fn do_unbond(
		who: &T::AccountId,
		amount: BalanceOf<T>,
	) -> Result<BlockNumberFor<T>, DispatchError> {
		let mut validator = Validators::<T>::get(who).ok_or(Error::<T>::NotValidator)?;
		ensure!(!amount.is_zero() && validator.bonded >= amount, Error::<T>::InsufficientBond);
		let unlocks_at = frame_system::Pallet::<T>::block_number()
			.saturating_add(Self::params().unbonding_delay);
		validator.bonded = validator.bonded.saturating_sub(amount);
		validator.unbonding = validator.unbonding.saturating_add(amount);
		validator.unlocks_at = unlocks_at;
		Validators::<T>::insert(who, validator);
		Ok(unlocks_at)
	}

	/// Releases `who`'s unbonded stake once unlocked; returns the amount.
	pub(crate) fn do_withdraw(who: &T::AccountId) -> Result<BalanceOf<T>, DispatchError> {
		let mut validator = Validators::<T>::get(who).ok_or(Error::<T>::NotValidator)?;
		ensure!(!validator.unbonding.is_zero(), Error::<T>::NothingToWithdraw);
		ensure!(
			frame_system::Pallet::<T>::block_number() >= validator.unlocks_at,
			Error::<T>::StillUnbonding
		);
		let amount = T::Currency::release(
			&HoldReason::ValidatorStake.into(),
			who,
			validator.unbonding,
			Precision::BestEffort,
		)?;
		validator.unbonding = Zero::zero();
		if validator.bonded.is_zero() {
			Validators::<T>::remove(who);
		} else {
			Validators::<T>::insert(who, validator);
		}
		Ok(amount)
	}

	/// A pending contribution and its vote's windows.
	fn pending(
		contribution: ContributionId,
		params: &ParamsOf<T>,
	) -> Result<(ContributionInfoOf<T>, Windows<BlockNumberFor<T>>), DispatchError> {
		let info = T::Contributions::contribution_info(contribution)
			.ok_or(Error::<T>::UnknownContribution)?;
		ensure!(info.status == ContributionStatus::Pending, Error::<T>::NotPending);
		let commit_end = info.submitted_at.saturating_add(params.commit_period);
		let reveal_end = commit_end.saturating_add(params.reveal_period);
		Ok((info, Windows { commit_end, reveal_end }))
	}

	/// Records `who`'s sealed ballot on `contribution`.
	pub(crate) fn do_commit(
		who: &T::AccountId,
		contribution: ContributionId,
		commitment: Commitment,
	) -> DispatchResult {
		let params = Self::params();
		let (info, windows) = Self::pending(contribution, &params)?;
		ensure!(&info.contributor != who, Error::<T>::OwnContribution);
		ensure!(
			frame_system::Pallet::<T>::block_number() <= windows.commit_end,
			Error::<T>::CommitWindowClosed
		);
		let validator = Validators::<T>::get(who).ok_or(Error::<T>::NotValidator)?;
		ensure!(validator.datanets.contains(&info.datanet), Error::<T>::NotServingDatanet);
		ensure!(
			!validator.bonded.is_zero()
				&& validator.bonded >= Self::minimum_stake(&params, validator.datanets.len()),
			Error::<T>::UnderStaked
		);
		ensure!(!Commits::<T>::contains_key(contribution, who), Error::<T>::AlreadyCommitted);
		let mut poll = Polls::<T>::get(contribution).unwrap_or_default();
		poll.voters.try_push(who.clone()).map_err(|_| Error::<T>::TooManyVoters)?;
		Polls::<T>::insert(contribution, poll);
		Commits::<T>::insert(
			contribution,
			who,
			CommitRecord { commitment, stake: validator.bonded, revealed: None },
		);
		Ok(())
	}

	/// Checks `who`'s ballot against its commitment and adds it to the tally.
	pub(crate) fn do_reveal(
		who: &T::AccountId,
		contribution: ContributionId,
		ballot: Ballot,
		salt: Salt,
	) -> DispatchResult {
		let params = Self::params();
		let (_, windows) = Self::pending(contribution, &params)?;
		let mut record = Commits::<T>::get(contribution, who).ok_or(Error::<T>::NotCommitted)?;
		ensure!(record.revealed.is_none(), Error::<T>::AlreadyRevealed);
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > windows.commit_end, Error::<T>::RevealWindowNotOpen);
		ensure!(now <= windows.reveal_end, Error::<T>::RevealWindowClosed);
		ensure!(
			commitment(&ballot, &salt, who) == record.commitment,
			Error::<T>::CommitmentMismatch
		);
		let mut poll = Polls::<T>::get(contribution).ok_or(Error::<T>::NotCommitted)?;
		poll.revealed = poll.revealed.saturating_add(1);
		match ballot {
			Ballot::Accept => poll.accept_stake = poll.accept_stake.saturating_add(record.stake),
			Ballot::Reject(reason) => {
				let tally = &mut poll.reject_stake[reason.index()];
				*tally = tally.saturating_add(record.stake);
			},
		}
		Polls::<T>::insert(contribution, poll);
		record.revealed = Some(ballot);
		Commits::<T>::insert(contribution, who, record);
		Ok(())
	}

	/// Closes `contribution`'s vote after its reveal window: decides, slashes, records.
	pub(crate) fn do_close(contribution: ContributionId) -> Result<VerdictOf<T>, DispatchError> {
		let params = Self::params();
		let (info, windows) = Self::pending(contribution, &params)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > windows.reveal_end, Error::<T>::PollStillOpen);

		let poll = Polls::<T>::take(contribution).unwrap_or_default();
		let reject_stake =
			poll.reject_stake.iter().fold(BalanceOf::<T>::zero(), |sum, s| sum.saturating_add(*s));
		let revealed_stake = poll.accept_stake.saturating_add(reject_stake);
		// A tie is no majority: like a missing quorum, it costs the contributor nothing.
		let status = if poll.revealed < params.quorum || poll.accept_stake == reject_stake {
			ContributionStatus::Expired
		} else if poll.accept_stake > reject_stake {
			ContributionStatus::Accepted
		} else {
			ContributionStatus::Rejected
		};
		let reason = (status == ContributionStatus::Rejected)
			.then(|| Self::leading_reason(&poll.reject_stake))
			.flatten();
		let winning_stake = match status {
			ContributionStatus::Accepted => poll.accept_stake,
			ContributionStatus::Rejected => reject_stake,
			_ => Zero::zero(),
		};
		// Slashing only follows a clear supermajority: honest disagreement in close calls, and
		// votes that reached no verdict, cost nothing.
		let supermajority = status != ContributionStatus::Expired
			&& winning_stake >= params.supermajority.mul_ceil(revealed_stake);

		let mut agreeing = Vec::new();
		let mut slashed = BalanceOf::<T>::zero();
		for voter in poll.voters.iter() {
			let Some(record) = Commits::<T>::take(contribution, voter) else { continue };
			let share = match record.revealed {
				Some(ballot) if ballot.status() == status => {
					agreeing.push((voter.clone(), record.stake));
					continue;
				},
				Some(_) if supermajority => params.wrong_vote_slash,
				None if supermajority => params.no_reveal_slash,
				_ => continue,
			};
			let amount = Self::slash(voter, share * record.stake);
			if !amount.is_zero() {
				slashed = slashed.saturating_add(amount);
				Self::deposit_event(Event::Slashed {
					who: voter.clone(),
					contribution,
					amount,
					revealed: record.revealed.is_some(),
				});
			}
		}

		T::Contributions::set_status(contribution, status)?;
		let verdict = Verdict {
			status,
			reason,
			accept_stake: poll.accept_stake,
			reject_stake,
			revealed: poll.revealed,
			committed: poll.voters.len() as u32,
			slashed,
			decided_at: now,
		};
		Verdicts::<T>::insert(contribution, verdict.clone());
		T::OnVerdict::on_verdict(contribution, info.datanet, &info.contributor, status, &agreeing);
		Self::deposit_event(Event::VerdictReached { contribution, status, reason });
		Ok(verdict)
	}

	/// The reason with the most rejecting stake; the earlier code wins a tie.
	fn leading_reason(reject_stake: &[BalanceOf<T>; Reason::COUNT]) -> Option<Reason> {
		Reason::ALL
			.iter()
			.zip(reject_stake.iter())
			.filter(|(_, stake)| !stake.is_zero())
			.fold(None, |best: Option<(Reason, BalanceOf<T>)>, (reason, stake)| match best {
				Some((_, best_stake)) if best_stake >= *stake => best,
				_ => Some((*reason, *stake)),
			})
			.map(|(reason, _)| reason)
	}

	/// Burns up to `amount` of `who`'s held stake, bonded first, then unbonding; returns what
	/// was burned.
	fn slash(who: &T::AccountId, amount: BalanceOf<T>) -> BalanceOf<T> {
		let Some(mut validator) = Validators::<T>::get(who) else { return Zero::zero() };
		let burned = T::Currency::burn_held(
			&HoldReason::ValidatorStake.into(),
			who,
			amount,
			Precision::BestEffort,
			Fortitude::Force,
		)
		.unwrap_or_default();
		let from_bonded = burned.min(validator.bonded);
		validator.bonded = validator.bonded.saturating_sub(from_bonded);
		validator.unbonding =
			validator.unbonding.saturating_sub(burned.saturating_sub(from_bonded));
		if validator.bonded.is_zero() && validator.unbonding.is_zero() {
			Validators::<T>::remove(who);
		} else {
			Validators::<T>::insert(who, validator);
		}
		burned
	}

	/// Every validator's held stake equals its bonded plus unbonding record, and every open
	/// poll's commitments belong to its voters.
	/// Public so that other pallets' tests check it too.
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use crate::frame_support::traits::fungible::InspectHold;
		for (who, validator) in Validators::<T>::iter() {
			let held = T::Currency::balance_on_hold(&HoldReason::ValidatorStake.into(), &who);
			ensure!(
				held == validator.bonded.saturating_add(validator.unbonding),
				"a validator's hold differs from its bonded and unbonding stake"
			);
		}
		for (contribution, poll) in Polls::<T>::iter() {
			let commits = Commits::<T>::iter_prefix(contribution).count();
			ensure!(commits == poll.voters.len(), "a poll's voters differ from its commitments");
		}
		Ok(())
	}
}
