//! The node's JSON-RPC extensions beside the standard `sc-rpc` methods: account nonces
//! (`system_accountNextIndex`), fee queries (`payment_*`) and Provenant's own RPCs
//! (`datanets_*`, `rewards_*`, `models_*`).

use std::sync::Arc;

use jsonrpsee::RpcModule;
use polkadot_sdk::{
	sc_transaction_pool_api::TransactionPool,
	sp_api::ProvideRuntimeApi,
	sp_block_builder::BlockBuilder,
	sp_blockchain::{Error as BlockChainError, HeaderBackend, HeaderMetadata},
	*,
};
use provenant_runtime::{opaque::Block, AccountId, Balance, BlockNumber, Nonce};

/// What the RPC extensions need.
pub(crate) struct FullDeps<C, P> {
	/// The client instance to use.
	pub client: Arc<C>,
	/// Transaction pool instance.
	pub pool: Arc<P>,
}

/// Instantiate all full RPC extensions.
pub(crate) fn create_full<C, P>(
	deps: FullDeps<C, P>,
) -> Result<RpcModule<()>, Box<dyn std::error::Error + Send + Sync>>
where
	C: ProvideRuntimeApi<Block> + polkadot_sdk::sc_client_api::BlockBackend<Block>,
	C: HeaderBackend<Block> + HeaderMetadata<Block, Error = BlockChainError> + 'static,
	C: Send + Sync + 'static,
	C::Api: substrate_frame_rpc_system::AccountNonceApi<Block, AccountId, Nonce>,
	C::Api: pallet_transaction_payment_rpc::TransactionPaymentRuntimeApi<Block, Balance>,
	C::Api: BlockBuilder<Block>,
	C::Api: pallet_datanets_rpc::DatanetsRuntimeApi<Block, AccountId, BlockNumber>,
	C::Api: pallet_rewards_rpc::RewardsRuntimeApi<Block, AccountId, Balance, BlockNumber>,
	C::Api: pallet_models_rpc::ModelsRuntimeApi<Block, AccountId, Balance, BlockNumber>,
	P: TransactionPool + 'static,
{
	use pallet_datanets_rpc::{Datanets, DatanetsApiServer};
	use pallet_models_rpc::{Models, ModelsApiServer};
	use pallet_rewards_rpc::{Rewards, RewardsApiServer};
	use pallet_transaction_payment_rpc::{TransactionPayment, TransactionPaymentApiServer};
	use substrate_frame_rpc_system::{System, SystemApiServer};

	let mut module = RpcModule::new(());
	let FullDeps { client, pool } = deps;

	module.merge(System::new(client.clone(), pool).into_rpc())?;
	module.merge(TransactionPayment::new(client.clone()).into_rpc())?;
	module.merge(Datanets::new(client.clone()).into_rpc())?;
	module.merge(Rewards::<_, _, Balance>::new(client.clone()).into_rpc())?;
	module.merge(Models::<_, _, Balance>::new(client).into_rpc())?;

	Ok(module)
}
