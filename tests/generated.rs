#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Generated artifacts must match the code that generates them.

use std::path::Path;

#[test]
fn crd_files_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut expected_files = Vec::new();
    for crd in approval_gate::crd::all() {
        let name = approval_gate::crd::file_name(&crd);
        let path = dir.join(&name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = approval_gate::crd::to_yaml(&crd).unwrap();
        assert!(
            on_disk == generated,
            "crds/{name} is out of date with src/crd/: run `make crds` and commit the result"
        );
        expected_files.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "crds/ holds files no CRD generates"
    );
}

#[test]
fn shell_completions_match_the_plugin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin/completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-approve"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let on_disk =
            std::fs::read(dir.join(format!("kubectl-approve.{shell}"))).unwrap_or_default();
        assert!(
            on_disk == out.stdout,
            "plugin/completions/kubectl-approve.{shell} is out of date: run `make completions`"
        );
    }
}
