//! Unit tests: every rule and every error of the datanets pallet.

use crate::{
	mock::*, AccountUsage, Caps, ContributionByContent, ContributionInfo, ContributionRegistry,
	ContributionStatus, Contributions, DataKind, DatanetId, DatanetStatus, DatanetUsage, Error,
	Event, Format, FormatSet, HoldReason, NextDatanetId,
};
use codec::Encode;
use frame_support::{
	assert_noop, assert_ok, dispatch::DispatchResult, traits::fungible::InspectHold,
};
use polkadot_sdk::{frame_support, frame_system, sp_io};

/// Minimal but genuine file headers for each kind.
pub(crate) mod files {
	/// A 1×1 PNG, as written by common encoders.
	pub(crate) fn png(seed: u8) -> Vec<u8> {
		let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
		bytes.extend_from_slice(&[0x1f, 0x15, 0xc4, 0x89, seed]);
		bytes
	}
	/// Plain UTF-8 prose.
	pub(crate) fn text(body: &str) -> Vec<u8> {
		body.as_bytes().to_vec()
	}
	/// `len` bytes of valid UTF-8 text, distinct per `seed`.
	pub(crate) fn text_of_len(len: usize, seed: u8) -> Vec<u8> {
		let mut bytes = vec![b'a' + seed % 26; len];
		bytes[0] = b'#';
		bytes
	}
	/// A WAVE header.
	pub(crate) fn wav() -> Vec<u8> {
		let mut bytes = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0".to_vec();
		bytes.extend_from_slice(&[0x44, 0xac, 0, 0, 0x88, 0x58, 1, 0, 2, 0, 16, 0]);
		bytes
	}
	/// A JPEG start of image and JFIF marker.
	pub(crate) fn jpeg() -> Vec<u8> {
		b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec()
	}
}

fn text_formats() -> FormatSet {
	FormatSet::of(&[Format::Txt, Format::Jsonl, Format::Csv])
}

fn default_caps() -> Caps {
	Caps { max_file_bytes: 5 * KIB, daily_bytes: 10 * KIB as u64 }
}

fn create(owner: AccountId, kind: DataKind, formats: FormatSet) -> DatanetId {
	let id = NextDatanetId::<Test>::get();
	assert_ok!(Datanets::create(
		RuntimeOrigin::signed(owner),
		b"name".to_vec(),
		b"summary".to_vec(),
		vec![b"tag".to_vec()],
		kind,
		formats,
		default_caps(),
	));
	id
}

fn text_datanet(owner: AccountId) -> DatanetId {
	create(owner, DataKind::Text, text_formats())
}

fn image_datanet(owner: AccountId) -> DatanetId {
	create(owner, DataKind::Image, FormatSet::of(&[Format::Png, Format::Jpeg]))
}

fn submit(who: AccountId, datanet: DatanetId, data: Vec<u8>) -> DispatchResult {
	Datanets::submit(RuntimeOrigin::signed(who), datanet, data)
}

mod create {
	use super::*;

	#[test]
	fn holds_a_deposit_and_records_the_rules() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let info = crate::Datanets::<Test>::get(id).unwrap();
			assert_eq!(info.owner, ALICE);
			assert_eq!(info.kind, DataKind::Text);
			assert_eq!(info.formats, text_formats());
			assert_eq!(info.caps, default_caps());
			assert_eq!(info.status, DatanetStatus::Active);
			assert_eq!(info.metadata.name.to_vec(), b"name".to_vec());
			let expected_deposit =
				DEPOSIT_BASE + DEPOSIT_PER_BYTE * info.metadata.encoded_size() as u64;
			assert_eq!(info.deposit, expected_deposit);
			assert_eq!(
				Balances::balance_on_hold(&HoldReason::DatanetDeposit.into(), &ALICE),
				expected_deposit
			);
			System::assert_last_event(
				Event::DatanetCreated { datanet: id, owner: ALICE, kind: DataKind::Text }.into(),
			);
			assert_eq!(text_datanet(BOB), id + 1);
		});
	}

	#[test]
	fn refuses_bad_metadata() {
		ExtBuilder::build_and_execute(|| {
			let attempt = |name: Vec<u8>, summary: Vec<u8>, tags: Vec<Vec<u8>>| {
				Datanets::create(
					RuntimeOrigin::signed(ALICE),
					name,
					summary,
					tags,
					DataKind::Text,
					text_formats(),
					default_caps(),
				)
			};
			assert_noop!(attempt(vec![], vec![], vec![]), Error::<Test>::BadName);
			assert_noop!(attempt(vec![b'n'; 65], vec![], vec![]), Error::<Test>::BadName);
			assert_noop!(
				attempt(b"n".to_vec(), vec![b's'; 257], vec![]),
				Error::<Test>::SummaryTooLong
			);
			assert_noop!(attempt(b"n".to_vec(), vec![], vec![vec![]]), Error::<Test>::BadTags);
			assert_noop!(
				attempt(b"n".to_vec(), vec![], vec![vec![b't'; 17]]),
				Error::<Test>::BadTags
			);
			assert_noop!(
				attempt(b"n".to_vec(), vec![], vec![b"t".to_vec(); 5]),
				Error::<Test>::BadTags
			);
			assert_noop!(attempt(vec![0xff, 0xfe], vec![], vec![]), Error::<Test>::MetadataNotUtf8);
		});
	}

	#[test]
	fn refuses_bad_rules() {
		ExtBuilder::build_and_execute(|| {
			let attempt = |kind: DataKind, formats: FormatSet, caps: Caps| {
				Datanets::create(
					RuntimeOrigin::signed(ALICE),
					b"n".to_vec(),
					vec![],
					vec![],
					kind,
					formats,
					caps,
				)
			};
			assert_noop!(
				attempt(DataKind::Text, FormatSet(0), default_caps()),
				Error::<Test>::NoFormats
			);
			assert_noop!(
				attempt(DataKind::Text, FormatSet::of(&[Format::Txt, Format::Png]), default_caps()),
				Error::<Test>::FormatOfOtherKind
			);
			assert_noop!(
				attempt(DataKind::Audio, FormatSet(1 << 15), default_caps()),
				Error::<Test>::FormatOfOtherKind
			);
			assert_noop!(
				attempt(DataKind::Text, text_formats(), Caps { max_file_bytes: 0, daily_bytes: 1 }),
				Error::<Test>::BadFileCap
			);
			assert_noop!(
				attempt(
					DataKind::Text,
					text_formats(),
					Caps { max_file_bytes: HARD_CAP + 1, daily_bytes: u64::MAX }
				),
				Error::<Test>::BadFileCap
			);
			assert_noop!(
				attempt(
					DataKind::Text,
					text_formats(),
					Caps { max_file_bytes: KIB, daily_bytes: 10 }
				),
				Error::<Test>::BadDailyCap
			);
		});
	}

	#[test]
	fn refuses_an_owner_who_cannot_pay_the_deposit() {
		ExtBuilder::build_and_execute(|| {
			assert!(Datanets::create(
				RuntimeOrigin::signed(POOR),
				b"n".to_vec(),
				vec![],
				vec![],
				DataKind::Text,
				text_formats(),
				default_caps(),
			)
			.is_err());
			assert_eq!(NextDatanetId::<Test>::get(), 0);
			assert_eq!(Balances::free_balance(POOR), 10);
		});
	}
}

mod owner_controls {
	use super::*;

	#[test]
	fn metadata_updates_move_the_deposit_both_ways() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let before = crate::Datanets::<Test>::get(id).unwrap().deposit;
			assert_ok!(Datanets::update_metadata(
				RuntimeOrigin::signed(ALICE),
				id,
				b"a longer name".to_vec(),
				vec![b's'; 100],
				vec![],
			));
			let grown = crate::Datanets::<Test>::get(id).unwrap().deposit;
			assert!(grown > before);
			System::assert_last_event(Event::MetadataUpdated { datanet: id }.into());
			assert_ok!(Datanets::update_metadata(
				RuntimeOrigin::signed(ALICE),
				id,
				b"n".to_vec(),
				vec![],
				vec![],
			));
			assert!(crate::Datanets::<Test>::get(id).unwrap().deposit < before);
		});
	}

	#[test]
	fn only_the_owner_controls_a_datanet() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let bob = RuntimeOrigin::signed(BOB);
			assert_noop!(
				Datanets::update_metadata(bob.clone(), id, b"x".to_vec(), vec![], vec![]),
				Error::<Test>::NotOwner
			);
			assert_noop!(
				Datanets::update_rules(bob.clone(), id, text_formats(), default_caps()),
				Error::<Test>::NotOwner
			);
			assert_noop!(Datanets::pause(bob.clone(), id), Error::<Test>::NotOwner);
			assert_noop!(Datanets::close(bob, id), Error::<Test>::NotOwner);
			assert_noop!(
				Datanets::pause(RuntimeOrigin::signed(ALICE), 99),
				Error::<Test>::UnknownDatanet
			);
		});
	}

	#[test]
	fn rules_change_within_the_fixed_kind() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let only_csv = FormatSet::of(&[Format::Csv]);
			let caps = Caps { max_file_bytes: KIB, daily_bytes: 2 * KIB as u64 };
			assert_ok!(Datanets::update_rules(RuntimeOrigin::signed(ALICE), id, only_csv, caps));
			System::assert_last_event(
				Event::RulesUpdated { datanet: id, formats: only_csv, caps }.into(),
			);
			assert_noop!(
				Datanets::update_rules(
					RuntimeOrigin::signed(ALICE),
					id,
					FormatSet::of(&[Format::Png]),
					caps
				),
				Error::<Test>::FormatOfOtherKind
			);
			assert_noop!(
				submit(BOB, id, files::text("plain prose, not csv")),
				Error::<Test>::FormatNotAllowed { detected: Format::Txt }
			);
		});
	}

	#[test]
	fn pause_resume_and_close() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let alice = RuntimeOrigin::signed(ALICE);
			assert_noop!(Datanets::resume(alice.clone(), id), Error::<Test>::NotPaused);
			assert_ok!(Datanets::pause(alice.clone(), id));
			System::assert_last_event(Event::DatanetPaused { datanet: id }.into());
			assert_noop!(Datanets::pause(alice.clone(), id), Error::<Test>::DatanetPaused);
			assert_noop!(submit(BOB, id, files::text("hello")), Error::<Test>::DatanetPaused);
			assert_ok!(Datanets::resume(alice.clone(), id));
			assert_ok!(submit(BOB, id, files::text("hello")));

			let deposit = crate::Datanets::<Test>::get(id).unwrap().deposit;
			let free_before = Balances::free_balance(ALICE);
			assert_ok!(Datanets::close(alice.clone(), id));
			System::assert_last_event(
				Event::DatanetClosed { datanet: id, deposit_released: deposit }.into(),
			);
			assert_eq!(Balances::free_balance(ALICE), free_before + deposit);
			assert_noop!(submit(BOB, id, files::text("again")), Error::<Test>::DatanetClosed);
			assert_noop!(Datanets::close(alice.clone(), id), Error::<Test>::DatanetClosed);
			assert_noop!(Datanets::resume(alice, id), Error::<Test>::DatanetClosed);
			// Its contributions stay on record.
			assert_eq!(Contributions::<Test>::iter().count(), 1);
		});
	}
}

mod submit {
	use super::*;

	#[test]
	fn stores_a_pending_record_and_indexes_the_bytes() {
		ExtBuilder::build_and_execute(|| {
			let id = image_datanet(ALICE);
			let png = files::png(0);
			let hash = sp_io::hashing::blake2_256(&png);
			assert_ok!(submit(BOB, id, png.clone()));
			System::assert_last_event(
				Event::ContributionSubmitted {
					contribution: 0,
					datanet: id,
					who: BOB,
					hash,
					size: png.len() as u32,
					format: Format::Png,
				}
				.into(),
			);
			let record = Contributions::<Test>::get(0).unwrap();
			assert_eq!(record.status, ContributionStatus::Pending);
			assert_eq!((record.contributor, record.datanet, record.block), (BOB, id, 1));
			assert_eq!(ContributionByContent::<Test>::get(id, hash), Some(0));
			assert_eq!(AccountUsage::<Test>::get(BOB).bytes, png.len() as u64);
			assert_eq!(DatanetUsage::<Test>::get(id).files, 1);
		});
	}

	#[test]
	fn the_bytes_go_to_the_transaction_index_not_to_state() {
		use polkadot_sdk::sp_state_machine::IndexOperation;
		let png = files::png(7);
		let hash = sp_io::hashing::blake2_256(&png);
		let mut ext = ExtBuilder::build();
		ext.execute_with(|| {
			let id = image_datanet(ALICE);
			frame_system::Pallet::<Test>::set_extrinsic_index(3);
			assert_ok!(submit(BOB, id, png.clone()));
			// State keeps a record of fixed size, whatever the file's size.
			assert!(Contributions::<Test>::get(0).unwrap().encoded_size() < 64);
		});
		match ext.overlayed_changes().transaction_index_ops() {
			[IndexOperation::Insert { extrinsic, hash: indexed, size }] => {
				assert_eq!((*extrinsic, *size), (3, png.len() as u32));
				assert_eq!(indexed, &hash.to_vec());
			},
			other => panic!("expected one index insert, got {other:?}"),
		}
	}

	#[test]
	fn refuses_bytes_of_another_kind_naming_what_they_are() {
		ExtBuilder::build_and_execute(|| {
			let images = image_datanet(ALICE);
			let texts = text_datanet(ALICE);
			assert_noop!(
				submit(BOB, images, files::text("I am not a picture")),
				Error::<Test>::WrongKind { detected: Format::Txt }
			);
			assert_noop!(
				submit(BOB, texts, files::png(1)),
				Error::<Test>::WrongKind { detected: Format::Png }
			);
			assert_noop!(
				submit(BOB, images, files::wav()),
				Error::<Test>::WrongKind { detected: Format::Wav }
			);
			let png_only = create(ALICE, DataKind::Image, FormatSet::of(&[Format::Png]));
			assert_noop!(
				submit(BOB, png_only, files::jpeg()),
				Error::<Test>::FormatNotAllowed { detected: Format::Jpeg }
			);
		});
	}

	#[test]
	fn refuses_empty_unrecognized_and_oversized_files() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			assert_noop!(submit(BOB, id, vec![]), Error::<Test>::EmptyFile);
			assert_noop!(
				submit(BOB, id, vec![0x00, 0xff, 0x13, 0x37]),
				Error::<Test>::UnrecognizedFormat
			);
			assert_noop!(
				submit(BOB, id, files::text_of_len(5 * KIB as usize + 1, 0)),
				Error::<Test>::FileTooLarge
			);
			assert_ok!(submit(BOB, id, files::text_of_len(5 * KIB as usize, 0)));
		});
	}

	#[test]
	fn refuses_exact_duplicates_within_a_datanet_only() {
		ExtBuilder::build_and_execute(|| {
			let first = text_datanet(ALICE);
			let second = text_datanet(ALICE);
			assert_ok!(submit(BOB, first, files::text("the same words")));
			assert_noop!(
				submit(CHARLIE, first, files::text("the same words")),
				Error::<Test>::Duplicate
			);
			assert_noop!(
				submit(BOB, first, files::text("the same words")),
				Error::<Test>::Duplicate
			);
			assert_ok!(submit(BOB, second, files::text("the same words")));
		});
	}

	#[test]
	fn the_twenty_first_file_of_a_day_is_refused_until_the_next_day() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let big_day = Caps { max_file_bytes: KIB, daily_bytes: 100 * KIB as u64 };
			assert_ok!(Datanets::update_rules(
				RuntimeOrigin::signed(ALICE),
				id,
				text_formats(),
				big_day
			));
			for n in 0..ACCOUNT_DAILY_FILES {
				assert_ok!(submit(BOB, id, files::text(&format!("file number {n}"))));
			}
			assert_noop!(
				submit(BOB, id, files::text("one too many")),
				Error::<Test>::DailyFileCapReached
			);
			// The cap is per account: another contributor is unaffected.
			assert_ok!(submit(CHARLIE, id, files::text("charlie's first")));
			run_to_block(BLOCKS_PER_DAY);
			assert_ok!(submit(BOB, id, files::text("one too many")));
		});
	}

	#[test]
	fn account_bytes_are_capped_across_datanets() {
		ExtBuilder::build_and_execute(|| {
			let first = text_datanet(ALICE);
			let second = text_datanet(ALICE);
			let four_kib = 4 * KIB as usize;
			assert_ok!(submit(BOB, first, files::text_of_len(four_kib, 1)));
			assert_ok!(submit(BOB, second, files::text_of_len(four_kib, 2)));
			// 8 KiB used of 10: another 4 KiB would pass the account's cap.
			assert_noop!(
				submit(BOB, second, files::text_of_len(four_kib, 3)),
				Error::<Test>::DailyByteCapReached
			);
			assert_ok!(submit(BOB, second, files::text_of_len(2 * KIB as usize, 4)));
		});
	}

	#[test]
	fn datanet_bytes_are_capped_across_accounts() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			let four_kib = 4 * KIB as usize;
			assert_ok!(submit(BOB, id, files::text_of_len(four_kib, 1)));
			assert_ok!(submit(CHARLIE, id, files::text_of_len(four_kib, 2)));
			assert_noop!(
				submit(ALICE, id, files::text_of_len(four_kib, 3)),
				Error::<Test>::DatanetDailyCapReached
			);
			run_to_block(2 * BLOCKS_PER_DAY);
			assert_ok!(submit(ALICE, id, files::text_of_len(four_kib, 3)));
		});
	}

	#[test]
	fn unknown_datanet_is_refused() {
		ExtBuilder::build_and_execute(|| {
			assert_noop!(submit(BOB, 7, files::text("hi")), Error::<Test>::UnknownDatanet);
		});
	}
}

mod registry {
	use super::*;

	#[test]
	fn validation_moves_pending_contributions_on_once() {
		ExtBuilder::build_and_execute(|| {
			let id = text_datanet(ALICE);
			assert_ok!(submit(BOB, id, files::text("judge me")));
			assert_eq!(
				<Datanets as ContributionRegistry<_, _>>::contribution_info(0),
				Some(ContributionInfo {
					contributor: BOB,
					datanet: id,
					hash: sp_io::hashing::blake2_256(&files::text("judge me")),
					submitted_at: System::block_number(),
					status: ContributionStatus::Pending,
				})
			);
			assert_noop!(
				<Datanets as ContributionRegistry<_, _>>::set_status(
					0,
					ContributionStatus::Pending
				),
				Error::<Test>::NotAFinalStatus
			);
			assert_ok!(<Datanets as ContributionRegistry<_, _>>::set_status(
				0,
				ContributionStatus::Accepted
			));
			System::assert_last_event(
				Event::ContributionStatusChanged {
					contribution: 0,
					status: ContributionStatus::Accepted,
				}
				.into(),
			);
			assert_noop!(
				<Datanets as ContributionRegistry<_, _>>::set_status(
					0,
					ContributionStatus::Rejected
				),
				Error::<Test>::AlreadyJudged
			);
			assert_noop!(
				<Datanets as ContributionRegistry<_, _>>::set_status(
					9,
					ContributionStatus::Rejected
				),
				Error::<Test>::UnknownContribution
			);
		});
	}
}
