//! The pallet's logic: registration, jobs and their escrow, leases, commits and the fee split,
//! the training-set log, and the queries behind the runtime API.

use crate::frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{
		fungible::{InspectHold, MutateHold},
		tokens::{Fortitude, Precision},
	},
};
use crate::frame_system::{self, pallet_prelude::BlockNumberFor};
use crate::sp_runtime::{
	traits::{Saturating, Zero},
	SaturatedConversion,
};
use crate::*;
use alloc::vec::Vec;
use pallet_datanets::{
	ContributionId, ContributionRegistry, ContributionStatus, DataKind, DatanetId,
};
use pallet_rewards::{RewardSource, RewardsLedger};
use pallet_validation::OnVerdict;
use polkadot_sdk::sp_arithmetic::{helpers_128bit::multiply_by_rational_with_rounding, Rounding};
use provenant_jobspec::{BaseLimits, Family, HyperParams};

/// The worker of a job stopped while it trained, and its pay.
pub(crate) type StoppedWorker<T> = (<T as frame_system::Config>::AccountId, BalanceOf<T>);

impl<T: Config> Pallet<T> {
	#[allow(clippy::too_many_arguments)]
	pub(crate) fn do_register_model(
		owner: T::AccountId,
		family: Family,
		name: Vec<u8>,
		weights: Vec<Sha256>,
		tokenizer: Sha256,
		max_positions: u32,
		licence: Vec<u8>,
		source: Vec<u8>,
	) -> Result<ModelId, DispatchError> {
		ensure!(!name.is_empty(), Error::<T>::BadName);
		let name = Name::try_from(name).map_err(|_| Error::<T>::BadName)?;
		ensure!(!weights.is_empty(), Error::<T>::NoWeightFiles);
		let weights = WeightFiles::try_from(weights).map_err(|_| Error::<T>::TooManyWeightFiles)?;
		ensure!(max_positions >= 2, Error::<T>::TooFewPositions);
		let licence = Text::try_from(licence).map_err(|_| Error::<T>::TextTooLong)?;
		let source = Text::try_from(source).map_err(|_| Error::<T>::TextTooLong)?;
		let deposit = T::ModelDeposit::get();
		T::Currency::hold(&HoldReason::ModelDeposit.into(), &owner, deposit)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		let model = NextModelId::<T>::mutate(|next| {
			let id = *next;
			*next = next.saturating_add(1);
			id
		});
		BaseModels::<T>::insert(
			model,
			BaseModel {
				owner,
				family,
				name,
				weights,
				tokenizer,
				max_positions,
				licence,
				source,
				deposit,
				retired: false,
			},
		);
		Ok(model)
	}

	pub(crate) fn do_create_job(
		creator: T::AccountId,
		model: ModelId,
		datanets: Vec<DatanetId>,
		params: HyperParams,
		fee: BalanceOf<T>,
	) -> Result<(JobId, TrainingSet), DispatchError> {
		let base = BaseModels::<T>::get(model).ok_or(Error::<T>::UnknownModel)?;
		ensure!(!base.retired, Error::<T>::ModelRetired);
		let datanets = Self::checked_datanets(datanets)?;
		provenant_jobspec::check(
			&params,
			&BaseLimits { family: base.family, max_positions: base.max_positions },
		)
		.map_err(|refusal| Error::<T>::InvalidHyperParameter(refusal.field))?;
		ensure!(fee >= T::MinJobFee::get(), Error::<T>::FeeTooLow);
		let training = Self::training_set_now(&datanets)?;
		T::Currency::hold(&HoldReason::JobEscrow.into(), &creator, fee)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		let job = NextJobId::<T>::mutate(|next| {
			let id = *next;
			*next = next.saturating_add(1);
			id
		});
		Jobs::<T>::insert(
			job,
			Job {
				creator,
				model,
				params,
				fee,
				training: training.clone(),
				created: frame_system::Pallet::<T>::block_number(),
				state: JobState::Open,
			},
		);
		Ok((job, training))
	}

	/// Sorted, distinct, existing text datanets, at most a job's worth.
	fn checked_datanets(mut datanets: Vec<DatanetId>) -> Result<JobDatanets, DispatchError> {
		ensure!(!datanets.is_empty(), Error::<T>::NoDatanets);
		datanets.sort_unstable();
		let count = datanets.len();
		datanets.dedup();
		ensure!(datanets.len() == count, Error::<T>::DuplicateDatanet);
		let datanets = JobDatanets::try_from(datanets).map_err(|_| Error::<T>::TooManyDatanets)?;
		for datanet in &datanets {
			let kind = T::Datanets::datanet_kind(*datanet).ok_or(Error::<T>::UnknownDatanet)?;
			ensure!(kind == DataKind::Text, Error::<T>::NotATextDatanet);
		}
		Ok(datanets)
	}

	/// Every accepted contribution of `datanets` so far, as a training set.
	fn training_set_now(datanets: &JobDatanets) -> Result<TrainingSet, DispatchError> {
		let mut parts = SetParts::default();
		let mut size = 0u64;
		for datanet in datanets {
			let count = LogLength::<T>::get(datanet);
			let frontier = Frontiers::<T>::get(datanet).unwrap_or([[0; 32]; merkle::DEPTH]);
			parts
				.try_push(SetPart {
					datanet: *datanet,
					count,
					root: merkle::root(&frontier, count),
				})
				.map_err(|_| Error::<T>::TooManyDatanets)?;
			size = size.saturating_add(count);
		}
		ensure!(size > 0, Error::<T>::EmptyTrainingSet);
		ensure!(size <= u64::from(T::MaxShares::get()), Error::<T>::TrainingSetTooLarge);
		let root = merkle::set_root(&parts);
		Ok(TrainingSet { parts, root, size })
	}

	/// Cancels an open job, or stops a claimed one: the fee comes back, less the trainer's
	/// part when a worker holds the lease, which pays the worker for the compute it spent.
	/// Returns the worker stopped and its pay.
	pub(crate) fn do_cancel_job(
		who: &T::AccountId,
		job: JobId,
	) -> Result<Option<StoppedWorker<T>>, DispatchError> {
		let mut record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
		ensure!(record.creator == *who, Error::<T>::NotJobCreator);
		let worker = match &record.state {
			JobState::Open => None,
			JobState::Claimed { worker, .. } => Some(worker.clone()),
			JobState::Committed { .. } | JobState::Cancelled => Err(Error::<T>::JobOver)?,
		};
		T::Currency::release(&HoldReason::JobEscrow.into(), who, record.fee, Precision::Exact)?;
		let stopped = match worker {
			Some(worker) => {
				let pay = CurrentFeeSplit::<T>::get().trainer.mul_floor(record.fee);
				T::Rewards::pay_claimable(who, RewardSource::Training, &[(worker.clone(), pay)])?;
				Workers::<T>::mutate(&worker, |info| {
					if let Some(info) = info {
						info.claims = info.claims.saturating_sub(1);
					}
				});
				// Never to be committed: its lease's queued check finds it cancelled.
				Adapters::<T>::remove(job);
				Some((worker, pay))
			},
			None => None,
		};
		record.state = JobState::Cancelled;
		Jobs::<T>::insert(job, record);
		Ok(stopped)
	}

	pub(crate) fn do_bond(worker: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
		ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
		let mut info = Workers::<T>::get(worker).unwrap_or_default();
		info.bond = info.bond.saturating_add(amount);
		ensure!(info.bond >= T::MinWorkerBond::get(), Error::<T>::BondTooSmall);
		T::Currency::hold(&HoldReason::WorkerBond.into(), worker, amount)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		Workers::<T>::insert(worker, info);
		Ok(())
	}

	pub(crate) fn do_unbond(worker: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
		ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
		let mut info = Workers::<T>::get(worker).ok_or(Error::<T>::NotAWorker)?;
		ensure!(amount <= info.bond, Error::<T>::NotThatMuchBonded);
		info.bond = info.bond.saturating_sub(amount);
		if info.bond.is_zero() {
			ensure!(info.claims == 0, Error::<T>::StillClaiming);
		} else {
			ensure!(info.bond >= T::MinWorkerBond::get(), Error::<T>::BondTooSmall);
		}
		T::Currency::release(&HoldReason::WorkerBond.into(), worker, amount, Precision::Exact)?;
		if info.bond.is_zero() {
			Workers::<T>::remove(worker);
		} else {
			Workers::<T>::insert(worker, info);
		}
		Ok(())
	}

	pub(crate) fn do_claim(
		worker: &T::AccountId,
		job: JobId,
	) -> Result<BlockNumberFor<T>, DispatchError> {
		let mut info = Workers::<T>::get(worker).ok_or(Error::<T>::NotAWorker)?;
		ensure!(info.bond >= T::MinWorkerBond::get(), Error::<T>::BondTooSmall);
		let until = Jobs::<T>::try_mutate(job, |record| {
			let record = record.as_mut().ok_or(Error::<T>::UnknownJob)?;
			match record.state {
				JobState::Open => {},
				JobState::Committed { .. } => Err(Error::<T>::AlreadyCommitted)?,
				_ => Err(Error::<T>::JobNotOpen)?,
			}
			let until = Self::queue_lease(job)?;
			record.state = JobState::Claimed { worker: worker.clone(), until };
			Ok::<_, DispatchError>(until)
		})?;
		info.claims = info.claims.saturating_add(1);
		Workers::<T>::insert(worker, info);
		Lapsed::<T>::remove(job, worker);
		Ok(until)
	}

	pub(crate) fn do_extend(
		worker: &T::AccountId,
		job: JobId,
	) -> Result<BlockNumberFor<T>, DispatchError> {
		Self::ensure_lease(worker, job)?;
		let until = Self::queue_lease(job)?;
		Jobs::<T>::mutate(job, |record| {
			if let Some(record) = record {
				record.state = JobState::Claimed { worker: worker.clone(), until };
			}
		});
		Ok(until)
	}

	/// A lease from now, queued for its check the block after its last.
	fn queue_lease(job: JobId) -> Result<BlockNumberFor<T>, DispatchError> {
		let until =
			frame_system::Pallet::<T>::block_number().saturating_add(LeasePeriod::<T>::get());
		ExpiryQueue::<T>::try_mutate(until.saturating_add(1u32.into()), |queue| {
			queue.try_push(job).map_err(|_| Error::<T>::LeaseQueueFull)
		})?;
		Ok(until)
	}

	/// The job, if `worker` holds its live lease; otherwise the error that says why not.
	fn ensure_lease(worker: &T::AccountId, job: JobId) -> Result<JobOf<T>, DispatchError> {
		let record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
		match &record.state {
			JobState::Claimed { worker: holder, .. } if holder == worker => Ok(record),
			JobState::Committed { .. } => Err(Error::<T>::AlreadyCommitted.into()),
			_ if Lapsed::<T>::contains_key(job, worker) => Err(Error::<T>::LeaseExpired.into()),
			_ => Err(Error::<T>::NotLeaseHolder.into()),
		}
	}

	pub(crate) fn do_publish_adapter(
		worker: &T::AccountId,
		job: JobId,
		config: Vec<u8>,
		weights: &[u8],
	) -> Result<PublishedAdapter<T::AccountId>, DispatchError> {
		Self::ensure_lease(worker, job)?;
		ensure!(!weights.is_empty(), Error::<T>::EmptyAdapter);
		let size = u32::try_from(weights.len()).map_err(|_| Error::<T>::AdapterTooLarge)?;
		ensure!(size <= T::MaxAdapterBytes::get(), Error::<T>::AdapterTooLarge);
		let config =
			AdapterConfig::try_from(config).map_err(|_| Error::<T>::AdapterConfigTooLarge)?;
		let extrinsic_index =
			frame_system::Pallet::<T>::extrinsic_index().ok_or(Error::<T>::NotInAnExtrinsic)?;
		let content = sp_io::hashing::blake2_256(weights);
		// The weights are the call's last argument, so they are the extrinsic's last bytes.
		sp_io::transaction_index::index(extrinsic_index, size, content);
		let published = PublishedAdapter {
			worker: worker.clone(),
			sha256: sp_io::hashing::sha2_256(weights),
			size,
			content,
			config,
		};
		Adapters::<T>::insert(job, published.clone());
		Ok(published)
	}

	pub(crate) fn do_commit(
		worker: &T::AccountId,
		job: JobId,
		outcome: Outcome,
		shares: Vec<Share>,
	) -> Result<Paid<BalanceOf<T>>, DispatchError> {
		let mut record = Self::ensure_lease(worker, job)?;
		let published = Adapters::<T>::get(job)
			.filter(|published| published.worker == *worker)
			.ok_or(Error::<T>::NoAdapterPublished)?;
		ensure!(
			(published.sha256, published.size) == (outcome.adapter, outcome.adapter_size),
			Error::<T>::AdapterMismatch
		);
		ensure!(
			!JobByAdapter::<T>::contains_key(outcome.adapter),
			Error::<T>::AdapterAlreadyCommitted
		);
		ensure!(outcome.training_root == record.training.root, Error::<T>::WrongTrainingRoot);
		let shares = Self::checked_shares(&record.training, shares, &outcome)?;
		let paid = Self::pay_out(&record, worker, &shares)?;

		record.state = JobState::Committed { worker: worker.clone() };
		Jobs::<T>::insert(job, record);
		Workers::<T>::mutate(worker, |info| {
			if let Some(info) = info {
				info.claims = info.claims.saturating_sub(1);
			}
		});
		JobByAdapter::<T>::insert(outcome.adapter, job);
		Results::<T>::insert(job, outcome);
		Shares::<T>::insert(job, shares);
		Ok(paid)
	}

	/// The shares, if they name every member of `training` once, in set order, weigh more than
	/// nothing, have the outcome's root, and, when attributed, add up to one with the method's
	/// parameters stated.
	fn checked_shares(
		training: &TrainingSet,
		shares: Vec<Share>,
		outcome: &Outcome,
	) -> Result<BoundedVec<Share, T::MaxShares>, DispatchError> {
		ensure!(shares.len() as u64 == training.size, Error::<T>::SharesMismatch);
		let shares = BoundedVec::<Share, T::MaxShares>::try_from(shares)
			.map_err(|_| Error::<T>::SharesMismatch)?;
		let mut listed = shares.iter();
		for part in &training.parts {
			for index in 0..part.count {
				let entry = Log::<T>::get(part.datanet, index).ok_or(Error::<T>::SharesMismatch)?;
				let share = listed.next().ok_or(Error::<T>::SharesMismatch)?;
				ensure!(share.contribution == entry.contribution, Error::<T>::SharesMismatch);
			}
		}
		ensure!(shares.iter().any(|share| share.weight > 0), Error::<T>::SharesAddUpToZero);
		let leaves =
			shares.iter().map(|share| merkle::share_leaf(share.contribution, share.weight));
		ensure!(merkle::root_of(leaves) == outcome.shares_root, Error::<T>::SharesRootMismatch);
		if let Attribution::Influence { projection_dim, checkpoints, probes, .. } =
			outcome.attribution
		{
			ensure!(
				projection_dim > 0 && checkpoints > 0 && probes > 0,
				Error::<T>::AttributionUnstated
			);
			let total = shares.iter().try_fold(0u64, |sum, share| sum.checked_add(share.weight));
			ensure!(total == Some(SHARES_WHOLE), Error::<T>::SharesNotWhole);
		}
		Ok(shares)
	}

	/// Releases the job's escrow and pays it out by the published split.
	fn pay_out(
		job: &JobOf<T>,
		worker: &T::AccountId,
		shares: &[Share],
	) -> Result<Paid<BalanceOf<T>>, DispatchError> {
		T::Currency::release(
			&HoldReason::JobEscrow.into(),
			&job.creator,
			job.fee,
			Precision::Exact,
		)?;
		Self::split_fee(&job.creator, RewardSource::Training, job, worker, shares, job.fee)
	}

	/// Pays `fee` from `payer`'s free balance by the published split: the trainer's and the
	/// contributors' parts onto claimable balances, the pools' part into the pools of the
	/// datanets by their contributions in the set. Rounding remainders go to the first
	/// datanet's pool, so the whole fee is always paid.
	fn split_fee(
		payer: &T::AccountId,
		source: RewardSource,
		job: &JobOf<T>,
		worker: &T::AccountId,
		shares: &[Share],
		fee: BalanceOf<T>,
	) -> Result<Paid<BalanceOf<T>>, DispatchError> {
		let split = CurrentFeeSplit::<T>::get();
		let trainer = split.trainer.mul_floor(fee);
		let pools = split.pools.mul_floor(fee);
		let contributors = fee.saturating_sub(trainer).saturating_sub(pools);

		let total_weight: u128 = shares.iter().map(|share| u128::from(share.weight)).sum();
		let mut credits = Vec::with_capacity(shares.len() + 1);
		credits.push((worker.clone(), trainer));
		let mut contributors_paid = BalanceOf::<T>::zero();
		for share in shares {
			let amount = part_of::<T>(contributors, share.weight.into(), total_weight);
			if amount.is_zero() {
				continue;
			}
			let contributor = T::Datanets::contribution_info(share.contribution)
				.ok_or(Error::<T>::SharesMismatch)?
				.contributor;
			contributors_paid = contributors_paid.saturating_add(amount);
			credits.push((contributor, amount));
		}

		let mut pool_amounts: Vec<(DatanetId, BalanceOf<T>)> = job
			.training
			.parts
			.iter()
			.map(|part| {
				(part.datanet, part_of::<T>(pools, part.count.into(), job.training.size.into()))
			})
			.collect();
		// Everything not credited goes to the pools, so the whole fee is paid out.
		let pools_paid = fee.saturating_sub(trainer).saturating_sub(contributors_paid);
		let pooled =
			pool_amounts.iter().fold(BalanceOf::<T>::zero(), |sum, (_, a)| sum.saturating_add(*a));
		if let Some((_, first)) = pool_amounts.first_mut() {
			*first = first.saturating_add(pools_paid.saturating_sub(pooled));
		}

		for (datanet, amount) in &pool_amounts {
			if !amount.is_zero() {
				T::Rewards::fund_pool(payer, *datanet, *amount)?;
			}
		}
		T::Rewards::pay_claimable(payer, source, &credits)?;
		Ok(Paid { trainer, pools: pools_paid, contributors: contributors_paid })
	}

	/// Re-opens the jobs whose lease ended before `now`, slashing their workers. Returns how
	/// many queued entries it looked at.
	pub(crate) fn expire_leases(now: BlockNumberFor<T>) -> u32 {
		let queue = ExpiryQueue::<T>::take(now);
		for job in &queue {
			let Some(mut record) = Jobs::<T>::get(job) else { continue };
			let JobState::Claimed { worker, until } = record.state.clone() else { continue };
			if until >= now {
				// Extended since: a later entry checks it.
				continue;
			}
			record.state = JobState::Open;
			Jobs::<T>::insert(job, record);
			Lapsed::<T>::insert(job, &worker, ());
			let mut slashed = BalanceOf::<T>::zero();
			Workers::<T>::mutate(&worker, |info| {
				let Some(info) = info else { return };
				info.claims = info.claims.saturating_sub(1);
				let slash = T::ExpirySlash::get() * info.bond;
				slashed = T::Currency::burn_held(
					&HoldReason::WorkerBond.into(),
					&worker,
					slash,
					Precision::BestEffort,
					Fortitude::Force,
				)
				.unwrap_or_default();
				info.bond = info.bond.saturating_sub(slashed);
			});
			Self::deposit_event(Event::LeaseExpired { job: *job, worker, slashed });
		}
		queue.len() as u32
	}

	/// Appends accepted contribution `contribution` of `datanet` to the datanet's log.
	pub(crate) fn log_accepted(datanet: DatanetId, contribution: ContributionId) {
		let Some(info) = T::Datanets::contribution_info(contribution) else { return };
		if LogPosition::<T>::contains_key(contribution) {
			return;
		}
		let entry = LogEntry { contribution, content: info.hash };
		let index = LogLength::<T>::get(datanet);
		let mut frontier = Frontiers::<T>::get(datanet).unwrap_or([[0; 32]; merkle::DEPTH]);
		merkle::append(&mut frontier, index, entry.leaf());
		Frontiers::<T>::insert(datanet, frontier);
		Log::<T>::insert(datanet, index, entry);
		LogPosition::<T>::insert(contribution, (datanet, index));
		LogLength::<T>::insert(datanet, index.saturating_add(1));
		Self::deposit_event(Event::ContributionLogged { datanet, contribution, index });
	}

	/// The members of `job`'s training set from position `start` of the set, at most `limit`.
	pub fn training_set(job: JobId, start: u64, limit: u32) -> Vec<SetMember> {
		let Some(record) = Jobs::<T>::get(job) else { return Vec::new() };
		let mut skip = start;
		let mut members = Vec::new();
		for part in &record.training.parts {
			if skip >= part.count {
				skip -= part.count;
				continue;
			}
			for index in skip..part.count {
				if members.len() as u32 >= limit {
					return members;
				}
				if let Some(entry) = Log::<T>::get(part.datanet, index) {
					members.push(SetMember { datanet: part.datanet, index, entry });
				}
			}
			skip = 0;
		}
		members
	}

	/// Proof that `contribution` is in `job`'s training set, or `None` if it is not.
	pub fn inclusion_proof(job: JobId, contribution: ContributionId) -> Option<InclusionProof> {
		let record = Jobs::<T>::get(job)?;
		let (datanet, index) = LogPosition::<T>::get(contribution)?;
		let part = record.training.parts.iter().find(|part| part.datanet == datanet)?;
		if index >= part.count {
			return None;
		}
		let leaves: Vec<Hash32> = (0..part.count)
			.filter_map(|i| Log::<T>::get(datanet, i).map(|entry| entry.leaf()))
			.collect();
		let entry = Log::<T>::get(datanet, index)?;
		Some(InclusionProof {
			member: SetMember { datanet, index, entry },
			siblings: merkle::proof(&leaves, index),
		})
	}

	/// Jobs from `start` on, optionally only those in `status` or of `model`, at most `limit`.
	pub fn jobs(
		status: Option<JobStatus>,
		model: Option<ModelId>,
		start: JobId,
		limit: u32,
	) -> Vec<(JobId, JobOf<T>)> {
		(start..NextJobId::<T>::get())
			.filter_map(|id| Jobs::<T>::get(id).map(|job| (id, job)))
			.filter(|(_, job)| status.is_none_or(|status| job.state.status() == status))
			.filter(|(_, job)| model.is_none_or(|model| job.model == model))
			.take(limit as usize)
			.collect()
	}

	/// What must hold after any sequence of calls:
	/// - each account's escrow hold is the sum of the fees of its open and claimed jobs;
	/// - each account's model-deposit hold is the sum of its models' deposits;
	/// - each worker's bond is what is held for it, and its claim count is the number of jobs
	///   it holds a lease on; every claimed job's lease is queued for its check;
	/// - every committed job has a result and shares, and its adapter maps back to it;
	/// - every datanet's log is dense, indexed by contribution, and its frontier gives the
	///   root of its entries.
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let mut claims: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (id, job) in Jobs::<T>::iter() {
			match &job.state {
				JobState::Open => {},
				JobState::Claimed { worker, until } => {
					*claims.entry(worker.clone()).or_default() += 1;
					ensure!(
						ExpiryQueue::<T>::get(until.saturating_add(1u32.into())).contains(&id),
						"a claimed job's lease is not queued"
					);
				},
				JobState::Committed { .. } => {
					let outcome = Results::<T>::get(id).ok_or("a committed job has no result")?;
					ensure!(Shares::<T>::contains_key(id), "a committed job has no shares");
					ensure!(
						JobByAdapter::<T>::get(outcome.adapter) == Some(id),
						"a committed adapter does not map to its job"
					);
					continue;
				},
				JobState::Cancelled => continue,
			}
			let held = escrow.entry(job.creator.clone()).or_default();
			*held = held.saturating_add(job.fee);
		}
		for (creator, fees) in escrow {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::JobEscrow.into(), &creator) == fees,
				"escrow held differs from the open jobs' fees"
			);
		}
		for (worker, info) in Workers::<T>::iter() {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::WorkerBond.into(), &worker) == info.bond,
				"a worker's bond differs from what is held"
			);
			ensure!(
				claims.remove(&worker).unwrap_or(0) == info.claims,
				"a worker's claim count differs from its leases"
			);
		}
		ensure!(claims.is_empty(), "a job is claimed by an account that is not a worker");
		let mut deposits: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (_, model) in BaseModels::<T>::iter() {
			let held = deposits.entry(model.owner.clone()).or_default();
			*held = held.saturating_add(model.deposit);
		}
		for (owner, deposit) in deposits {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ModelDeposit.into(), &owner) == deposit,
				"model deposits differ from what is held"
			);
		}
		for (datanet, length) in LogLength::<T>::iter() {
			let mut leaves = Vec::new();
			for index in 0..length {
				let entry = Log::<T>::get(datanet, index).ok_or("a datanet's log has a gap")?;
				ensure!(
					LogPosition::<T>::get(entry.contribution) == Some((datanet, index)),
					"a log entry's position is not indexed"
				);
				leaves.push(entry.leaf());
			}
			let frontier = Frontiers::<T>::get(datanet).unwrap_or([[0; 32]; merkle::DEPTH]);
			ensure!(
				merkle::root(&frontier, length) == merkle::root_of(leaves),
				"a datanet's frontier does not give its log's root"
			);
		}
		Ok(())
	}
}

/// `amount × numerator / denominator`, rounded down; zero for an empty denominator.
fn part_of<T: Config>(amount: BalanceOf<T>, numerator: u128, denominator: u128) -> BalanceOf<T> {
	if denominator == 0 {
		return Zero::zero();
	}
	multiply_by_rational_with_rounding(
		amount.saturated_into(),
		numerator,
		denominator,
		Rounding::Down,
	)
	.unwrap_or(0)
	.saturated_into()
}

/// The training-set log hears every verdict and keeps the accepted ones.
impl<T: Config> OnVerdict<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn on_verdict(
		contribution: ContributionId,
		datanet: DatanetId,
		_: &T::AccountId,
		status: ContributionStatus,
		_: &[(T::AccountId, BalanceOf<T>)],
	) {
		if status == ContributionStatus::Accepted {
			Self::log_accepted(datanet, contribution);
		}
	}

	fn weight(_: u32) -> Weight {
		T::WeightInfo::log_accepted()
	}
}

impl<T: Config> JobRevenue<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn committed_shares(job: JobId) -> Option<u32> {
		Shares::<T>::decode_len(job).map(|members| members as u32)
	}

	fn pay_for_job(
		payer: &T::AccountId,
		job: JobId,
		amount: BalanceOf<T>,
	) -> Result<Paid<BalanceOf<T>>, DispatchError> {
		let record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
		let JobState::Committed { worker } = &record.state else {
			return Err(Error::<T>::NotCommitted.into());
		};
		let shares = Shares::<T>::get(job).ok_or(Error::<T>::NotCommitted)?;
		Self::split_fee(payer, RewardSource::Inference, &record, worker, &shares, amount)
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn committed_for_benchmark(shares: u32) -> JobId {
		crate::benchmarking::committed::<T>(shares)
	}
}
