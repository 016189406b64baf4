//! Proptest: random membership changes interleaved with messages. Invariant: every
//! current member reads every message sent while it is a member; a device that is not
//! a member (removed, or never added) reads nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::net::Net;
use proptest::prelude::*;

const POOL: [&str; 5] = ["ana", "ben", "cai", "dev", "eve"];

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Add(usize),
    Remove(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..POOL.len()).prop_map(Op::Send),
        1 => (1..POOL.len()).prop_map(Op::Add),
        1 => (1..POOL.len()).prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn members_read_everything_and_non_members_nothing(ops in proptest::collection::vec(op(), 1..14), seed in 0u64..1000) {
        let mut net = Net::new(&POOL, seed);
        let gid = net.create("ana", &[("ben", false)]);
        let mut members = vec!["ana".to_string(), "ben".to_string()];
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Add(x) if !members.iter().any(|m| m == POOL[x]) => {
                    net.add("ana", &gid, &[POOL[x]]);
                    members.push(POOL[x].to_string());
                }
                Op::Remove(x) if members.iter().any(|m| m == POOL[x]) => {
                    net.remove("ana", &gid, &[POOL[x]]);
                    members.retain(|m| m != POOL[x]);
                }
                Op::Send(x) if members.iter().any(|m| m == POOL[x]) => {
                    let text = format!("message {i}");
                    let m = net.send(POOL[x], &gid, text.as_bytes());
                    for to in POOL.iter().filter(|t| **t != POOL[x]) {
                        let got = net.read(to, POOL[x], &m);
                        if members.iter().any(|mem| mem == to) {
                            prop_assert_eq!(got.as_deref(), Ok(text.as_bytes()), "member {} reading {}", to, POOL[x]);
                        } else {
                            prop_assert!(got.is_err(), "non-member {} read {}'s message", to, POOL[x]);
                        }
                    }
                }
                _ => {}
            }
            prop_assert_eq!(net.members("ana", &gid), { let mut s = members.clone(); s.sort(); s });
        }
    }
}
