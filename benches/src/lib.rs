//! Benchmarks live in `benches/compare.rs`; this library is empty.
