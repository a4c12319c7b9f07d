//! Golden files: output compared with `tests/golden/<name>`, for the
//! library's unit tests (through `src/plugin/golden.rs`) and the integration
//! tests alike.
//!
//! A test never writes into `tests/golden/`. Output that differs from its
//! golden file, or has none, is written to `<target dir>/golden/<name>` and
//! the test fails with the diff; `make golden` runs the golden tests and
//! copies what they wrote over `tests/golden/`.

use std::path::PathBuf;

use pretty_assertions::StrComparison;

/// Compares `actual` with `tests/golden/<name>` (see [`goldens`]).
pub fn golden(name: &str, actual: &str) {
    goldens(&[(name, actual)]);
}

/// Compares each `(name, actual)` with `tests/golden/<name>`, writes each that
/// differs or is missing to `target/golden/<name>`, then fails once with every
/// diff, so that one `make golden` accepts them all.
pub fn goldens(files: &[(&str, &str)]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let out = out_dir();
    let mut failures = Vec::new();
    for &(name, actual) in files {
        let written = out.join(name);
        match std::fs::read_to_string(dir.join(name)) {
            Ok(expected) if expected == actual => {
                // A file from an earlier failing run would be accepted by mistake.
                let _ = std::fs::remove_file(&written);
                continue;
            }
            Ok(expected) => failures.push(format!(
                "golden file tests/golden/{name} differs (< golden, > actual; actual in {}):\n{}",
                written.display(),
                StrComparison::new(&expected, actual)
            )),
            Err(e) => failures.push(format!(
                "golden file tests/golden/{name}: {e} (actual in {})",
                written.display()
            )),
        }
        std::fs::create_dir_all(&out)
            .and_then(|()| std::fs::write(&written, actual))
            .unwrap_or_else(|e| panic!("writing {}: {e}", written.display()));
    }
    assert!(
        failures.is_empty(),
        "{}\nrun `make golden` to accept",
        failures.join("\n")
    );
}

/// `golden/` in the target directory: `CARGO_TARGET_DIR` when set (a relative
/// one from the package root, where `make golden` runs cargo), else `target`.
fn out_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    target.join("golden")
}
