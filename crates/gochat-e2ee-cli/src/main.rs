//! `gochat-e2ee`: the GoChat E2EE command-line tool.
//!
//! - `gochat-e2ee demo [1:1|group|channel|attachment]`: a walk-through of a 1:1
//!   conversation, a Sender Keys group with a removal, an agency's channels, and an
//!   encrypted voice note, showing what the server sees next to what each client reads
//!   (no argument: all four).
//! - `gochat-e2ee interop`: the JSON-lines interop driver specified in `docs/interop.md`.
//! - `gochat-e2ee vectors generate [--out DIR]`, `vectors verify [--dir DIR]` and
//!   `vectors check-fresh [--dir DIR]`: the deterministic test vectors described in
//!   `docs/test-vectors.md`.

#![forbid(unsafe_code)]

mod demo;
mod demo_attachment;
mod demo_groups;
mod hex;
mod interop;
mod interop_attachments;
mod interop_certs;
mod interop_devices;
mod interop_groups;
mod interop_link;
mod interop_store;
mod interop_trust;
mod vectors;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  gochat-e2ee demo [1:1|group|channel|attachment]   (no argument: all four)
  gochat-e2ee interop
  gochat-e2ee vectors generate [--out DIR]
  gochat-e2ee vectors verify [--dir DIR]
  gochat-e2ee vectors check-fresh [--dir DIR]

The default vector directory is test-vectors/ at the repository root.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["demo"] => demo::run()
            .and_then(|()| demo_groups::group(unix_now()))
            .and_then(|()| demo_groups::channel(unix_now()))
            .and_then(|()| demo_attachment::run(unix_now())),
        ["demo", "1:1"] => demo::run(),
        ["demo", "group"] => demo_groups::group(unix_now()),
        ["demo", "channel"] => demo_groups::channel(unix_now()),
        ["demo", "attachment"] => demo_attachment::run(unix_now()),
        ["interop"] => interop::run(),
        ["vectors", "generate", rest @ ..] => dir_arg(rest, "--out").and_then(|d| vectors::generate(&d)),
        ["vectors", "verify", rest @ ..] => dir_arg(rest, "--dir").and_then(|d| vectors::verify(&d)),
        ["vectors", "check-fresh", rest @ ..] => dir_arg(rest, "--dir").and_then(|d| vectors::check_fresh(&d)),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `[FLAG DIR]`, defaulting to the repository's `test-vectors/`.
fn dir_arg(rest: &[&str], flag: &str) -> Result<PathBuf, String> {
    match rest {
        [] => Ok(vectors::default_dir()),
        [f, dir] if *f == flag => Ok(PathBuf::from(dir)),
        _ => Err(format!("expected no argument or `{flag} DIR`\n{USAGE}")),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
