//! The daemonless image (`make image-oci`) has the Dockerfile's layout: one
//! root-owned layer holding `/approval-gate`, user 65532, the same entrypoint
//! and command, and the chart's default name.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::harness::image;

fn archive() -> std::path::PathBuf {
    crate::support::helm::repo().join("target/oci/approval-gate.oci.tar")
}

/// One member of the OCI archive.
fn member(name: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive())
        .arg(name)
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "{name} is not in {}",
        archive().display()
    );
    out.stdout
}

fn blob(digest: &str) -> Vec<u8> {
    member(&format!(
        "blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    ))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn the_daemonless_image_has_the_dockerfile_layout() {
    let index = json(&member("index.json"));
    let manifest = &index["manifests"][0];
    assert_eq!(
        manifest["annotations"]["io.containerd.image.name"],
        Value::String(image())
    );
    let manifest = json(&blob(manifest["digest"].as_str().unwrap()));
    let config = json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    assert_eq!(config["os"], "linux");
    let runtime = &config["config"];

    let dockerfile =
        std::fs::read_to_string(crate::support::helm::repo().join("Dockerfile")).unwrap();
    let directive = |name: &str| {
        dockerfile
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in the Dockerfile"))
            .to_owned()
    };
    assert_eq!(runtime["User"], Value::String(directive("USER")));
    assert_eq!(runtime["User"], "65532:65532");
    assert_eq!(
        runtime["Entrypoint"],
        json(directive("ENTRYPOINT").as_bytes())
    );
    assert_eq!(runtime["Cmd"], json(directive("CMD").as_bytes()));
    assert!(
        dockerfile.contains("FROM scratch\nCOPY --from=build /approval-gate /approval-gate\n"),
        "the Dockerfile's final stage is one file on scratch"
    );

    // One layer: the binary alone, owned by root, executable by all.
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let layer = blob(layers[0]["digest"].as_str().unwrap());
    let mut list = Command::new("tar")
        .args(["-tvzf", "-", "--numeric-owner"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    list.stdin.take().unwrap().write_all(&layer).unwrap();
    let listing = String::from_utf8(list.wait_with_output().unwrap().stdout).unwrap();
    let entries: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(entries.len(), 1, "{listing}");
    assert_eq!(entries[0][0], "-rwxr-xr-x", "{listing}");
    assert_eq!(entries[0][1], "0/0", "{listing}");
    assert_eq!(entries[0].last(), Some(&"approval-gate"), "{listing}");
}
