//! A node leaves nothing behind: no process, mount, network namespace or
//! bridge, whether its owner tears it down or dies without doing so.

use std::{path::PathBuf, process::Command, time::Duration};

use approval_gate_testenv::node::{self, Bridge};

use crate::harness::TestCluster;

/// What a node run could leave on this machine, once it is over.
fn leftovers(dir: &std::path::Path, bridge: &Bridge) -> Vec<String> {
    let mut found = Vec::new();
    let needle = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if pid != std::process::id() && cmdline.contains(&needle) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    found.extend(
        node::mounts_under(dir)
            .into_iter()
            .map(|m| format!("mount {}", m.display())),
    );
    found.extend(
        node::namespaces_under(dir)
            .into_iter()
            .map(|n| format!("network namespace {}", n.display())),
    );
    if bridge.exists() {
        found.push(format!("bridge {}", bridge.name));
    }
    if dir.exists() {
        found.push(format!("folder {}", dir.display()));
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_down_node_leaves_no_process_mount_namespace_or_bridge() {
    let cluster = TestCluster::start().await;
    cluster.namespace("work", &[]).await;
    cluster.shell_pod("work", "shell").await;
    let dir: PathBuf = cluster.cluster.dir().to_owned();
    let bridge = Bridge {
        name: cluster.cluster.bridge().to_owned(),
        address: cluster.cluster.address(),
    };
    // While it runs, there is something to find (so the check can fail).
    let running = leftovers(&dir, &bridge);
    assert!(
        running.iter().any(|l| l.starts_with("process")),
        "{running:?}"
    );
    assert!(
        running.iter().any(|l| l.starts_with("mount")),
        "{running:?}"
    );
    assert!(
        running.iter().any(|l| l.starts_with("network namespace")),
        "{running:?}"
    );
    drop(cluster);
    let left = leftovers(&dir, &bridge);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// The child half of the next test: starts a node with a pod, says where it
/// is, and waits to be killed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by a_node_whose_owner_is_killed_is_swept_by_the_next_run"]
async fn child_runs_a_node_until_killed() {
    let cluster = TestCluster::start().await;
    cluster.namespace("work", &[]).await;
    cluster.shell_pod("work", "shell").await;
    println!(
        "NODE {} {} {}",
        cluster.cluster.dir().display(),
        cluster.cluster.bridge(),
        cluster.cluster.address()
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_owner_is_killed_is_swept_by_the_next_run() {
    use std::io::{BufRead as _, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "teardown::child_runs_a_node_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("NODE "))
    })
    .await
    .unwrap()
    .expect("the child reports its node");
    let mut fields = line.split_whitespace().skip(1);
    let dir = PathBuf::from(fields.next().unwrap());
    let bridge = Bridge {
        name: fields.next().unwrap().to_owned(),
        address: fields.next().unwrap().parse().unwrap(),
    };
    // Until the strand is seen, this test stands in as the folder's owner,
    // so that a node started meanwhile by another test does not sweep it.
    let owner = dir.join("owner.pid");
    let child_pid = std::fs::read_to_string(&owner).unwrap();
    std::fs::write(&owner, std::process::id().to_string()).unwrap();
    // SIGKILL: no destructor runs. The watchdogs stop the processes they
    // started; containers, shims, mounts, namespaces and the bridge stay.
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stranded = leftovers(&dir, &bridge);
    assert!(
        stranded.iter().any(|l| l.starts_with("network namespace")),
        "a killed owner strands its pods: {stranded:#?}"
    );
    // The next run sweeps what its dead owner left.
    std::fs::write(&owner, child_pid).unwrap();
    approval_gate_testenv::sweep_stale();
    let left = leftovers(&dir, &bridge);
    assert!(left.is_empty(), "left behind: {left:#?}");
}
