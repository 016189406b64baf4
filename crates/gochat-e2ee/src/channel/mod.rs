//! Official broadcast channels (placeholder; being written).
