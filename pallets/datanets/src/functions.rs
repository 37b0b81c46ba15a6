//! The pallet's logic: `do_*` helpers that take no origin, so they can be tested directly.

use crate::frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{fungible::MutateHold, tokens::Precision},
};
use crate::frame_system::pallet_prelude::BlockNumberFor;
use crate::sp_runtime::{
	traits::{Saturating, Zero},
	SaturatedConversion,
};
use crate::*;
use alloc::vec::Vec;

impl<T: Config> Pallet<T> {
	/// What must hold after any sequence of calls; checked after every unit test and by the
	/// `try_state` hook:
	/// - every content-index entry points at a contribution in that datanet with that hash;
	/// - every contribution is in the content index;
	/// - each datanet's deposit is exactly what its metadata costs (zero once closed), and each
	///   owner has exactly its datanets' deposits on hold.
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use crate::frame_support::traits::fungible::InspectHold;
		for (datanet, hash, id) in ContributionByContent::<T>::iter() {
			let record =
				Contributions::<T>::get(id).ok_or("a content-index entry names no contribution")?;
			ensure!(
				(record.datanet, record.hash) == (datanet, hash),
				"a content-index entry names another datanet's or another hash's contribution"
			);
		}
		for (id, record) in Contributions::<T>::iter() {
			ensure!(
				ContributionByContent::<T>::get(record.datanet, record.hash) == Some(id),
				"a contribution is missing from the content index"
			);
		}
		let mut held = alloc::collections::BTreeMap::<T::AccountId, BalanceOf<T>>::new();
		for (_, info) in Datanets::<T>::iter() {
			let expected = if info.status == DatanetStatus::Closed {
				Zero::zero()
			} else {
				Self::deposit_for(&info.metadata)
			};
			ensure!(info.deposit == expected, "a datanet's deposit is not what its metadata costs");
			let owed = held.entry(info.owner).or_insert_with(Zero::zero);
			*owed = owed.saturating_add(info.deposit);
		}
		for (owner, deposit) in held {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::DatanetDeposit.into(), &owner) == deposit,
				"an owner's held deposit is not the sum of its datanets' deposits"
			);
		}
		Ok(())
	}

	/// Bounds and checks raw metadata: a non-empty UTF-8 name, a UTF-8 summary and non-empty
	/// UTF-8 tags, each within its configured length.
	pub(crate) fn bounded_metadata(
		name: Vec<u8>,
		summary: Vec<u8>,
		tags: Vec<Vec<u8>>,
	) -> Result<MetadataOf<T>, DispatchError> {
		ensure!(!name.is_empty(), Error::<T>::BadName);
		let all_utf8 = core::str::from_utf8(&name).is_ok()
			&& core::str::from_utf8(&summary).is_ok()
			&& tags.iter().all(|tag| core::str::from_utf8(tag).is_ok());
		ensure!(all_utf8, Error::<T>::MetadataNotUtf8);
		ensure!(tags.iter().all(|tag| !tag.is_empty()), Error::<T>::BadTags);

		let name = BoundedVec::try_from(name).map_err(|_| Error::<T>::BadName)?;
		let summary = BoundedVec::try_from(summary).map_err(|_| Error::<T>::SummaryTooLong)?;
		let tags = tags
			.into_iter()
			.map(BoundedVec::try_from)
			.collect::<Result<Vec<_>, _>>()
			.map_err(|_| Error::<T>::BadTags)?;
		let tags = BoundedVec::try_from(tags).map_err(|_| Error::<T>::BadTags)?;
		Ok(Metadata { name, summary, tags })
	}

	/// Checks a datanet's allow-list and caps against its kind and the runtime's bounds.
	pub(crate) fn ensure_rules(kind: DataKind, formats: FormatSet, caps: Caps) -> DispatchResult {
		ensure!(!formats.is_empty(), Error::<T>::NoFormats);
		ensure!(formats.fits_kind(kind), Error::<T>::FormatOfOtherKind);
		ensure!(
			caps.max_file_bytes > 0 && caps.max_file_bytes <= T::MaxFileBytes::get(),
			Error::<T>::BadFileCap
		);
		ensure!(caps.daily_bytes >= u64::from(caps.max_file_bytes), Error::<T>::BadDailyCap);
		Ok(())
	}

	/// The deposit for metadata of `metadata`'s encoded size.
	pub(crate) fn deposit_for(metadata: &MetadataOf<T>) -> BalanceOf<T> {
		let bytes: BalanceOf<T> = (metadata.encoded_size() as u32).into();
		T::DepositBase::get().saturating_add(T::DepositPerByte::get().saturating_mul(bytes))
	}

	/// Stores a new datanet and holds its deposit from `owner`.
	pub(crate) fn do_create(
		owner: T::AccountId,
		metadata: MetadataOf<T>,
		kind: DataKind,
		formats: FormatSet,
		caps: Caps,
	) -> Result<DatanetId, DispatchError> {
		let datanet = NextDatanetId::<T>::get();
		let next = datanet.checked_add(1).ok_or(Error::<T>::Overflow)?;
		let deposit = Self::deposit_for(&metadata);
		T::Currency::hold(&HoldReason::DatanetDeposit.into(), &owner, deposit)?;
		Datanets::<T>::insert(
			datanet,
			DatanetInfo {
				owner,
				kind,
				formats,
				caps,
				status: DatanetStatus::Active,
				deposit,
				metadata,
			},
		);
		NextDatanetId::<T>::put(next);
		Ok(datanet)
	}

	/// The datanet `datanet`, if `who` owns it and it is not closed.
	fn owned_open(who: &T::AccountId, datanet: DatanetId) -> Result<DatanetInfo<T>, DispatchError> {
		let info = Datanets::<T>::get(datanet).ok_or(Error::<T>::UnknownDatanet)?;
		ensure!(&info.owner == who, Error::<T>::NotOwner);
		ensure!(info.status != DatanetStatus::Closed, Error::<T>::DatanetClosed);
		Ok(info)
	}

	/// Replaces metadata and moves the deposit to match its new size.
	pub(crate) fn do_update_metadata(
		who: &T::AccountId,
		datanet: DatanetId,
		metadata: MetadataOf<T>,
	) -> DispatchResult {
		let mut info = Self::owned_open(who, datanet)?;
		let new_deposit = Self::deposit_for(&metadata);
		let reason = HoldReason::DatanetDeposit.into();
		if new_deposit > info.deposit {
			T::Currency::hold(&reason, who, new_deposit.saturating_sub(info.deposit))?;
		} else if new_deposit < info.deposit {
			T::Currency::release(
				&reason,
				who,
				info.deposit.saturating_sub(new_deposit),
				Precision::BestEffort,
			)?;
		}
		info.deposit = new_deposit;
		info.metadata = metadata;
		Datanets::<T>::insert(datanet, info);
		Ok(())
	}

	/// Changes the allow-list and caps, within the datanet's kind and the runtime's bounds.
	pub(crate) fn do_update_rules(
		who: &T::AccountId,
		datanet: DatanetId,
		formats: FormatSet,
		caps: Caps,
	) -> DispatchResult {
		let mut info = Self::owned_open(who, datanet)?;
		Self::ensure_rules(info.kind, formats, caps)?;
		info.formats = formats;
		info.caps = caps;
		Datanets::<T>::insert(datanet, info);
		Ok(())
	}

	/// Pauses (`Paused`) or resumes (`Active`) a datanet.
	pub(crate) fn do_set_status(
		who: &T::AccountId,
		datanet: DatanetId,
		status: DatanetStatus,
	) -> DispatchResult {
		let mut info = Self::owned_open(who, datanet)?;
		match status {
			DatanetStatus::Paused => {
				ensure!(info.status == DatanetStatus::Active, Error::<T>::DatanetPaused)
			},
			_ => ensure!(info.status == DatanetStatus::Paused, Error::<T>::NotPaused),
		}
		info.status = status;
		Datanets::<T>::insert(datanet, info);
		Ok(())
	}

	/// Closes a datanet and releases its deposit; returns the amount released.
	pub(crate) fn do_close(
		who: &T::AccountId,
		datanet: DatanetId,
	) -> Result<BalanceOf<T>, DispatchError> {
		let mut info = Self::owned_open(who, datanet)?;
		let released = T::Currency::release(
			&HoldReason::DatanetDeposit.into(),
			who,
			info.deposit,
			Precision::BestEffort,
		)?;
		info.status = DatanetStatus::Closed;
		info.deposit = Zero::zero();
		Datanets::<T>::insert(datanet, info);
		Ok(released)
	}

	/// Page `page` of `datanet`'s contributions, oldest first, at most `page_size` of them.
	/// For runtime APIs: reads every contribution of the datanet, so never call it on chain.
	pub fn contributions_page(
		datanet: DatanetId,
		page: u32,
		page_size: u32,
	) -> Vec<(ContributionId, ContributionOf<T>)> {
		let mut ids: Vec<ContributionId> =
			ContributionByContent::<T>::iter_prefix_values(datanet).collect();
		ids.sort_unstable();
		ids.into_iter()
			.skip((page as usize).saturating_mul(page_size as usize))
			.take(page_size as usize)
			.filter_map(|id| Contributions::<T>::get(id).map(|record| (id, record)))
			.collect()
	}

	/// The day number of block `now`.
	pub fn day_of(now: BlockNumberFor<T>) -> u32 {
		(now / T::BlocksPerDay::get()).saturated_into()
	}

	/// Checks every rule for `data` in `datanet` without changing state.
	pub fn check_submission(
		who: &T::AccountId,
		datanet: DatanetId,
		data: &[u8],
	) -> Result<rules::Admitted, DispatchError> {
		let info = Datanets::<T>::get(datanet).ok_or(Error::<T>::UnknownDatanet)?;
		let today = Self::day_of(frame_system::Pallet::<T>::block_number());
		let submission_rules = rules::SubmissionRules {
			kind: info.kind,
			formats: info.formats,
			caps: info.caps,
			status: info.status,
			account_usage: AccountUsage::<T>::get(who).on(today),
			datanet_usage: DatanetUsage::<T>::get(datanet).on(today),
			account_daily_files: T::AccountDailyFiles::get(),
			account_daily_bytes: T::AccountDailyBytes::get(),
		};
		rules::check(&submission_rules, data, |hash| {
			ContributionByContent::<T>::contains_key(datanet, hash)
		})
		.map_err(|refusal| Error::<T>::from(refusal).into())
	}

	/// Checks `data`, records it, and indexes its bytes in the node's transaction index.
	pub(crate) fn do_submit(
		who: T::AccountId,
		datanet: DatanetId,
		data: &[u8],
	) -> Result<(ContributionId, ContributionOf<T>), DispatchError> {
		let rules::Admitted { format, hash, account_usage, datanet_usage } =
			Self::check_submission(&who, datanet, data)?;
		let id = NextContributionId::<T>::get();
		let next = id.checked_add(1).ok_or(Error::<T>::Overflow)?;
		let extrinsic_index =
			frame_system::Pallet::<T>::extrinsic_index().ok_or(Error::<T>::NotInAnExtrinsic)?;
		let size = data.len() as u32;

		// The bytes are the extrinsic's tail (the call's last argument): the node stores that
		// tail under `hash` and serves it back by hash. Nothing but the record enters state.
		sp_io::transaction_index::index(extrinsic_index, size, hash);

		let record = Contribution {
			hash,
			size,
			format,
			contributor: who.clone(),
			datanet,
			block: frame_system::Pallet::<T>::block_number(),
			extrinsic_index,
			status: ContributionStatus::Pending,
		};
		Contributions::<T>::insert(id, record.clone());
		ContributionByContent::<T>::insert(datanet, hash, id);
		AccountUsage::<T>::insert(&who, account_usage);
		DatanetUsage::<T>::insert(datanet, datanet_usage);
		NextContributionId::<T>::put(next);
		T::OnContribution::on_contribution(id, datanet, &who);
		Ok((id, record))
	}
}

impl<T: Config> From<rules::Refusal> for Error<T> {
	fn from(refusal: rules::Refusal) -> Self {
		use rules::Refusal::*;
		match refusal {
			Paused => Error::DatanetPaused,
			Closed => Error::DatanetClosed,
			EmptyFile => Error::EmptyFile,
			FileTooLarge { .. } => Error::FileTooLarge,
			UnrecognizedFormat => Error::UnrecognizedFormat,
			WrongKind { detected, .. } => Error::WrongKind { detected },
			FormatNotAllowed { detected } => Error::FormatNotAllowed { detected },
			Duplicate => Error::Duplicate,
			DailyFileCapReached { .. } => Error::DailyFileCapReached,
			DailyByteCapReached { .. } => Error::DailyByteCapReached,
			DatanetDailyCapReached { .. } => Error::DatanetDailyCapReached,
		}
	}
}

impl<T: Config> ContributionRegistry<T::AccountId, BlockNumberFor<T>> for Pallet<T> {
	fn contribution_info(
		id: ContributionId,
	) -> Option<ContributionInfo<T::AccountId, BlockNumberFor<T>>> {
		Contributions::<T>::get(id).map(|record| ContributionInfo {
			contributor: record.contributor,
			datanet: record.datanet,
			hash: record.hash,
			submitted_at: record.block,
			status: record.status,
		})
	}

	fn set_status(id: ContributionId, status: ContributionStatus) -> DispatchResult {
		ensure!(status != ContributionStatus::Pending, Error::<T>::NotAFinalStatus);
		Contributions::<T>::try_mutate(id, |record| {
			let record = record.as_mut().ok_or(Error::<T>::UnknownContribution)?;
			ensure!(record.status == ContributionStatus::Pending, Error::<T>::AlreadyJudged);
			record.status = status;
			Ok::<_, DispatchError>(())
		})?;
		Self::deposit_event(Event::ContributionStatusChanged { contribution: id, status });
		Ok(())
	}

	fn datanet_owner(datanet: DatanetId) -> Option<T::AccountId> {
		Datanets::<T>::get(datanet).map(|info| info.owner)
	}

	fn datanet_kind(datanet: DatanetId) -> Option<DataKind> {
		Datanets::<T>::get(datanet).map(|info| info.kind)
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn create_for_benchmark(contributor: &T::AccountId) -> ContributionId {
		use crate::frame_support::traits::fungible::Mutate;
		use crate::sp_runtime::traits::Bounded;
		T::Currency::set_balance(contributor, BalanceOf::<T>::max_value() / 4u32.into());
		let metadata = Self::bounded_metadata(b"benchmark".to_vec(), Vec::new(), Vec::new())
			.expect("a short name is within bounds");
		let caps = Caps { max_file_bytes: T::MaxFileBytes::get(), daily_bytes: u64::MAX };
		let formats = FormatSet::of(&[Format::Txt]);
		let datanet = Self::do_create(contributor.clone(), metadata, DataKind::Text, formats, caps)
			.expect("a funded account creates a datanet");
		frame_system::Pallet::<T>::set_extrinsic_index(1);
		Self::do_submit(contributor.clone(), datanet, b"a benchmark contribution")
			.expect("a fresh datanet admits a text file")
			.0
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn submit_for_benchmark(
		contributor: &T::AccountId,
		datanet: DatanetId,
		seed: u32,
	) -> ContributionId {
		use crate::frame_support::traits::fungible::Mutate;
		use crate::sp_runtime::traits::Bounded;
		// Small enough that thousands of funded contributors never overflow total issuance.
		T::Currency::set_balance(contributor, BalanceOf::<T>::max_value() / 1_000_000u32.into());
		frame_system::Pallet::<T>::set_extrinsic_index(1);
		let text = alloc::format!("benchmark contribution number {seed}");
		Self::do_submit(contributor.clone(), datanet, text.as_bytes())
			.expect("a benchmark datanet admits distinct text files")
			.0
	}
}
