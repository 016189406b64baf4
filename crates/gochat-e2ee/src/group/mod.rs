//! Groups with Sender Keys: each member device's sender chain and signing key, a
//! signed, hash-chained membership, and the pairwise distributions a change needs.

pub mod chain;
