//! `kubectl approve`: the kubectl plugin for requesters and approvers. Its
//! commands live in [`approval_gate::plugin`]; this is only the process edge.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(approval_gate::plugin::main(std::env::args_os().collect()));
    ExitCode::from(code)
}
