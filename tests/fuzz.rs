//! A short fuzz pass in every `cargo test`: the seed corpus and a few thousand mutated inputs
//! per parser, none of which may panic. `cargo bench --bench fuzz` runs millions.

use std::path::Path;

use rassylka_workspace::fuzz::{Dice, corpus, run, targets};

#[test]
fn no_parser_panics_on_mutated_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    // A fixed seed, so a failure here fails the same way again.
    let mut dice = Dice::new(0x5eed_2026_1130);
    let mut crashes = Vec::new();
    for target in targets() {
        let seeds = corpus(&root, target.name);
        assert!(!seeds.is_empty());
        crashes.extend(run(&target, &seeds, 1_500, &mut dice));
    }
    let shown: Vec<String> = crashes
        .iter()
        .take(5)
        .map(|c| {
            format!(
                "{}: {:?}",
                c.target,
                c.input.chars().take(300).collect::<String>()
            )
        })
        .collect();
    assert!(
        crashes.is_empty(),
        "{} inputs panicked:\n{}",
        crashes.len(),
        shown.join("\n")
    );
}
