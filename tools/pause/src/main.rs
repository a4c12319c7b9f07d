//! The process every pod sandbox runs as its PID 1: it holds the pod's
//! namespaces open, reaps the orphans it inherits, and exits on SIGTERM or
//! SIGINT. As PID 1 the default actions of those signals are ignored, so it
//! waits for them explicitly.

use nix::{
    sys::{
        signal::{SigSet, Signal},
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};

fn main() {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        signals.add(signal);
    }
    if let Err(err) = signals.thread_block() {
        eprintln!("pause: blocking signals: {err}");
        std::process::exit(1);
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(_) => std::process::exit(0),
            Err(err) => {
                eprintln!("pause: waiting for a signal: {err}");
                std::process::exit(1);
            }
        }
    }
}

/// Collects every child that has exited, so none stays a zombie.
fn reap() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
