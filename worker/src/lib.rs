//! # Provenant trainer worker
//!
//! A model provider runs this on its own CPU or GPU machine, with local copies of the base
//! models it is willing to train. It is the only piece that both talks to the chain and trains:
//! the trainer library ([`provenant_trainer`]) knows nothing of the chain, and the chain knows
//! nothing of candle.
//!
//! For each open job of a model it holds, the worker:
//! 1. checks the local files' sha256 against the registered model, so it only claims jobs for
//!    models it really has;
//! 2. claims the job, and extends its lease while it works;
//! 3. fetches every member of the training set through the content RPC and re-hashes it;
//! 4. turns the contributions into examples ([`dataset`]), holds out the job's eval split, and
//!    weighs each contribution by the tokens it adds;
//! 5. trains in-process, with checkpoints, so a killed worker resumes its own job;
//! 6. publishes the adapter and commits the result with the shares.
//!
//! Every choice is a function of the job (its seed and the set's order), so the same job on
//! the same machine kind gives the same adapter bytes.

pub mod dataset;
pub mod fingerprint;
pub mod run;

pub use run::{retrain, run, Options};
