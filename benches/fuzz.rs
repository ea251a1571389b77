//! A long fuzz run: `RASSYLKA_FUZZ_INPUTS` mutated inputs per parser (default 1 000 000),
//! seeded by `RASSYLKA_FUZZ_SEED` (default: the clock), printing every input that panics and a
//! line per target with how many inputs it took. `cargo bench --bench fuzz`.

use std::path::Path;
use std::time::Instant;

use rassylka_workspace::fuzz::{Dice, corpus, run, targets};

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let inputs: usize = std::env::var("RASSYLKA_FUZZ_INPUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 1_000 } else { 1_000_000 });
    let seed: u64 = std::env::var("RASSYLKA_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed {seed}, {inputs} inputs per target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut dice = Dice::new(seed);
    let mut found = 0;
    for target in targets() {
        let started = Instant::now();
        let crashes = run(&target, &corpus(&root, target.name), inputs, &mut dice);
        for crash in &crashes {
            println!("PANIC {}: {:?}", crash.target, crash.input);
        }
        found += crashes.len();
        println!(
            "{:<10} {inputs} inputs in {:.1} s, {} panics",
            target.name,
            started.elapsed().as_secs_f64(),
            crashes.len()
        );
    }
    if found > 0 {
        std::process::exit(1);
    }
}
