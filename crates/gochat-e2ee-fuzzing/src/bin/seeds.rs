//! Seed corpora and a crash reproducer, without cargo-fuzz.
//!
//! - `cargo run -p gochat-e2ee-fuzzing --bin fuzz-seeds [-- <dir>]` writes the seeds
//!   (default `fuzz/corpus` of the workspace). Seed files of the same name are
//!   overwritten; other files (found by fuzzing) are left alone.
//! - `cargo run --release -p gochat-e2ee-fuzzing --bin fuzz-seeds -- --run <target> <file>...`
//!   runs inputs through a target (no sanitizer), printing the outcome and the time.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--run") {
        let target = args.get(1).map(String::as_str).unwrap_or("");
        for file in args.iter().skip(2) {
            let data = std::fs::read(file)?;
            let start = Instant::now();
            let Some(accepted) = gochat_e2ee_fuzzing::run(target, &data) else {
                eprintln!("unknown target {target:?}; targets: {:?}", gochat_e2ee_fuzzing::TARGETS);
                std::process::exit(2);
            };
            println!("{file}: accepted={accepted} in {:?}", start.elapsed());
        }
        return Ok(());
    }
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"));
    for (target, (name, bytes)) in &gochat_e2ee_fuzzing::fixtures::get().seeds {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), bytes)?;
        println!("{target}/{name}: {} bytes", bytes.len());
    }
    Ok(())
}
