//! # Provenant trainer
//!
//! Off-chain LoRA and QLoRA fine-tuning for Provenant's registered base models, in pure Rust
//! on [candle](https://github.com/huggingface/candle), with adapters that Python's PEFT loads.
//!
//! ## Overview
//! - [`loader`] reads Hugging Face model directories (`config.json`, sharded safetensors,
//!   `tokenizer.json`) and LLaMA-family GGUF files.
//! - [`families`] holds each family's facts, one file a family: its `config.json` keys, module
//!   paths and quirks. [`config`] is the switches of one decoder, [`model`],
//!   which is built on one pluggable linear layer, [`linear`] (a [`frozen`] dense or quantised
//!   weight, plus LoRA).
//! - [`train`] runs AdamW with warm-up and a cosine or linear schedule, gradient accumulation and
//!   clipping, checkpoints and byte-exact resume, and logs JSON lines.
//! - [`adapter`] writes and reads PEFT's `adapter_config.json` and `adapter_model.safetensors`.
//! - [`data`] turns JSONL (text, prompt/response, Alpaca) and plain-text files into packed,
//!   prompt-masked training blocks.
//! - [`cpu`] holds fused CPU kernels with hand-written backward passes (linear + LoRA, norms,
//!   rotary heads, attention, the gated MLP, output layer + cross-entropy), on OpenBLAS.
//! - [`job`] holds a run to the chain's job rules ([`provenant_jobspec::check`]) and turns a
//!   job's hyper-parameters into the trainer's settings.
//! - [`generate`] samples text (greedy, temperature, top-p) for `chat`.
//! - [`attribution`] traces an answer to the training documents it repeats, through a suffix
//!   array of the training set's tokens.
//!
//! ## Terms
//! - *Base*: the frozen pre-trained weights. Training never changes a byte of them.
//! - *Adapter*: the LoRA matrices `A` (`[r, in]`) and `B` (`[out, r]`) of each targeted layer.
//! - *Block*: `cutoff_len + 1` consecutive tokens of the packed dataset.

pub mod adapter;
pub mod attribution;
pub mod config;
pub mod cpu;
pub mod data;
mod error;
pub mod families;
pub mod frozen;
pub mod generate;
pub mod job;
pub mod linear;
pub mod loader;
pub mod model;
pub mod quant;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
