//! Inputs the fuzz harness (`src/fuzz.rs` of the workspace) found panicking, kept as tests.

use rassylka_template::{Dialect, Template};

#[test]
fn converting_a_fallback_with_another_dialects_delimiters_points_at_a_whole_character() {
    let t = Template::compile("[ИМЯ|Добрый д{{ень]", &Dialect::bonusplus()).unwrap();
    for to in [Dialect::probonus(), Dialect::ecvi(), Dialect::itigris()] {
        if let Err(e) = t.convert(&to) {
            assert!(e.position().is_some(), "{e}");
        }
    }
}
