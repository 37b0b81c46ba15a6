//! # Datanets RPC
//!
//! - `datanets_content(hash)`: the bytes of a stored contribution, read from the node's
//!   transaction index (`BlockBackend::indexed_transaction`). Anyone can re-hash them with
//!   blake2-256 and compare with `hash`.
//! - `datanets_contributions(datanet, page, page_size?, at?)`: a page of contribution records,
//!   oldest first, through the runtime's `DatanetsApi`.

use std::{marker::PhantomData, sync::Arc};

use codec::Codec;
use jsonrpsee::{
	core::RpcResult,
	proc_macros::rpc,
	types::error::{ErrorObject, ErrorObjectOwned},
};
use pallet_datanets::{Contribution, ContributionStatus};
pub use pallet_datanets_runtime_api::DatanetsApi as DatanetsRuntimeApi;
use polkadot_sdk::{
	sc_client_api::BlockBackend,
	sp_api::ProvideRuntimeApi,
	sp_blockchain::HeaderBackend,
	sp_core::{Bytes, H256},
	sp_runtime::traits::Block as BlockT,
};
use serde::{Deserialize, Serialize};

/// The largest page `datanets_contributions` returns.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The page size when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Error codes of this RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
	/// No stored content has this hash on this node.
	ContentNotFound,
	/// The runtime call failed.
	RuntimeError,
	/// The database could not be read.
	DatabaseError,
	/// A parameter is out of range.
	InvalidParams,
}

impl Error {
	/// The JSON-RPC error code.
	pub const fn code(self) -> i32 {
		match self {
			Error::ContentNotFound => 4001,
			Error::RuntimeError => 4002,
			Error::DatabaseError => 4003,
			Error::InvalidParams => 4004,
		}
	}

	fn with(self, message: impl Into<String>) -> ErrorObjectOwned {
		ErrorObject::owned(self.code(), message.into(), None::<()>)
	}
}

/// A contribution record as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContributionRecord<AccountId, BlockNumber> {
	/// The contribution's identifier.
	pub id: u64,
	/// blake2-256 of the bytes, `0x`-hex.
	pub hash: H256,
	/// Size in bytes.
	pub size: u32,
	/// Detected format, lower case (`png`, `jsonl`, …).
	pub format: String,
	/// The contributor.
	pub contributor: AccountId,
	/// The datanet.
	pub datanet: u32,
	/// The block it was included in.
	pub block: BlockNumber,
	/// Its extrinsic index in that block.
	pub extrinsic_index: u32,
	/// `pending`, `accepted`, `rejected` or `expired`.
	pub status: String,
}

fn status_name(status: ContributionStatus) -> String {
	format!("{status:?}").to_lowercase()
}

impl<AccountId, BlockNumber> ContributionRecord<AccountId, BlockNumber> {
	fn new(id: u64, record: Contribution<AccountId, BlockNumber>) -> Self {
		Self {
			id,
			hash: H256(record.hash),
			size: record.size,
			format: record.format.name().to_string(),
			contributor: record.contributor,
			datanet: record.datanet,
			block: record.block,
			extrinsic_index: record.extrinsic_index,
			status: status_name(record.status),
		}
	}
}

/// The datanets RPC methods.
#[rpc(client, server)]
pub trait DatanetsApi<BlockHash, AccountId, BlockNumber> {
	/// The stored bytes of the contribution whose blake2-256 is `hash`.
	#[method(name = "datanets_content")]
	fn content(&self, hash: H256) -> RpcResult<Bytes>;

	/// Page `page` (from 0) of `datanet`'s contributions, oldest first.
	#[method(name = "datanets_contributions")]
	fn contributions(
		&self,
		datanet: u32,
		page: u32,
		page_size: Option<u32>,
		at: Option<BlockHash>,
	) -> RpcResult<Vec<ContributionRecord<AccountId, BlockNumber>>>;
}

/// Implements the datanets RPC over a client.
pub struct Datanets<C, Block> {
	client: Arc<C>,
	_marker: PhantomData<Block>,
}

impl<C, Block> Datanets<C, Block> {
	/// Serves the RPC from `client`.
	pub fn new(client: Arc<C>) -> Self {
		Self { client, _marker: PhantomData }
	}
}

impl<C, Block, AccountId, BlockNumber>
	DatanetsApiServer<<Block as BlockT>::Hash, AccountId, BlockNumber> for Datanets<C, Block>
where
	Block: BlockT,
	C: ProvideRuntimeApi<Block>
		+ HeaderBackend<Block>
		+ BlockBackend<Block>
		+ Send
		+ Sync
		+ 'static,
	C::Api: DatanetsRuntimeApi<Block, AccountId, BlockNumber>,
	AccountId: Codec + Clone + Serialize + Send + Sync + 'static,
	BlockNumber: Codec + Clone + Serialize + Send + Sync + 'static,
{
	fn content(&self, hash: H256) -> RpcResult<Bytes> {
		let bytes = self.client.indexed_transaction(hash).map_err(|e| {
			Error::DatabaseError.with(format!("reading the transaction index: {e}"))
		})?;
		bytes.map(Bytes).ok_or_else(|| {
			Error::ContentNotFound
				.with(format!("no stored content with hash {hash:?} on this node"))
		})
	}

	fn contributions(
		&self,
		datanet: u32,
		page: u32,
		page_size: Option<u32>,
		at: Option<<Block as BlockT>::Hash>,
	) -> RpcResult<Vec<ContributionRecord<AccountId, BlockNumber>>> {
		let page_size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
		if page_size == 0 || page_size > MAX_PAGE_SIZE {
			return Err(Error::InvalidParams.with(format!(
				"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}"
			)));
		}
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		let records = self
			.client
			.runtime_api()
			.contributions(at, datanet, page, page_size)
			.map_err(|e| Error::RuntimeError.with(format!("runtime call failed: {e}")))?;
		Ok(records.into_iter().map(|(id, record)| ContributionRecord::new(id, record)).collect())
	}
}
