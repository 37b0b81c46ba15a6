//! End-to-end tests of the chain foundation: a dev node, a restart after `kill -9`, and a
//! local validator network. Each test starts real `provenant-node` processes.

mod dev_node;
mod network;
mod restart;
