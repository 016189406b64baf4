//! Channels façade (next).
