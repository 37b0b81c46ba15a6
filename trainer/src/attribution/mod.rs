//! Attribution: which training documents an answer came from.
//!
//! - [`influence`]: at training time, each document's influence on a probe set, from the LoRA
//!   gradients at checkpoints of the run, and the shares of the sources it gives.
//! - [`spans`]: at inference time, the maximal spans of an answer found verbatim in the
//!   training set, through a suffix array of its token ids ([`suffix_array`]), and the shares
//!   of the sources that hold them.

pub mod influence;
pub mod spans;
pub mod suffix_array;

pub use spans::{Attribution, Span, SpanIndex};
