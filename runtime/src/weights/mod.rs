//! The runtime's own base weights, measured on ParityDB by `scripts/benchmark-runtime.sh`
//! (`frame-benchmarking-cli benchmark overhead|storage`); pallet weights add to these.
//!
//! - [`BlockExecutionWeight`]: executing an empty block.
//! - [`ExtrinsicBaseWeight`]: the fixed cost of any extrinsic (a no-op `System::remark`).
//! - [`ParityDbWeight`]: one storage read or write, timed on a dev chain filled with 400
//!   funded accounts and 8,000 contributions.
//!
//! Re-run the script, not an editor, to change them.

pub mod block_weights;
pub mod extrinsic_weights;
// The generated table documents each field's statistics, where rustc expects no doc comments.
#[allow(unused_doc_comments)]
pub mod paritydb_weights;

pub use block_weights::BlockExecutionWeight;
pub use extrinsic_weights::ExtrinsicBaseWeight;
pub use paritydb_weights::constants::ParityDbWeight;
