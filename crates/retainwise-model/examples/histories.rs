//! Writes a synthetic history file ([`retainwise_model::histories`]) to standard output:
//! `cargo run --release -p retainwise-model --example histories -- [CUSTOMERS] [MONTHS] [SEED]`.

use retainwise_model::histories::{generate, HistoryParams};
use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut p = HistoryParams::default();
    let mut next = |what: &str| {
        args.next().map(|a| {
            a.parse::<u64>()
                .unwrap_or_else(|_| panic!("{what} must be a whole number, got {a:?}"))
        })
    };
    if let Some(n) = next("CUSTOMERS") {
        p.customers = n as usize;
    }
    if let Some(n) = next("MONTHS") {
        p.months = n as u32;
    }
    if let Some(n) = next("SEED") {
        p.seed = n;
    }
    std::io::stdout()
        .write_all(generate(&p).as_bytes())
        .expect("writing to standard output");
}
