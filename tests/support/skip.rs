//! What a test does when the machine lacks what it needs (PostgreSQL,
//! Chromium, nginx): in CI it fails; elsewhere it is skipped, and says so
//! where a person sees it.

use std::io::Write;

/// Fails the test when `CI` is set; elsewhere writes `SKIPPED: …` to the
/// terminal and returns, so that the caller can return too. The line goes to
/// stderr directly: libtest captures what `print!` and `eprint!` write (and
/// shows it only for failed tests), not writes to `std::io::stderr()`.
pub fn skip(what: &str, how_to_fix: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {what}: {how_to_fix}"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "\nSKIPPED: {what}; {how_to_fix} (CI fails instead of skipping)"
    );
}
