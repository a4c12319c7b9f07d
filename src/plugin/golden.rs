//! Golden files for the plugin's output (`UPDATE_GOLDEN=1 cargo test --lib plugin` rewrites them).

use std::path::PathBuf;

use pretty_assertions::assert_eq;

/// Compares `actual` with `tests/golden/<name>`, or rewrites it under `UPDATE_GOLDEN`.
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(expected, actual, "golden file {name} differs");
}
