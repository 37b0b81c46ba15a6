#![doc = include_str!("../README.md")]

pub mod adapters;
pub mod api;
pub mod engine;
pub mod metrics;
pub mod payment;
pub mod studio;
