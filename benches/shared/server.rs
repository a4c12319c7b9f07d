//! A bench's server child process: `<binary> serve --kind K --requests N
//! --port-file F`, as `benches/webhook_load.rs` serves. Killed when dropped
//! (also on a panic or an error in the driver); if the driver itself is
//! killed, the child sees its stdin close and stops.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts the server and waits until it listens.
    pub fn spawn(binary: &Path, kind: &str, requests: usize, dir: &Path) -> Result<Self> {
        let port_file = dir.join(format!("{kind}-{requests}.port"));
        let child = Command::new(binary)
            .args(["serve", "--kind", kind, "--requests", &requests.to_string()])
            .arg("--port-file")
            .arg(&port_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { child, port: 0 };
        server.port = server.wait_for_port(&port_file, Duration::from_secs(120))?;
        Ok(server)
    }

    fn wait_for_port(&mut self, port_file: &Path, limit: Duration) -> Result<u16> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited before listening: {status}");
            }
            if let Ok(port) = std::fs::read_to_string(port_file) {
                return Ok(port.trim().parse()?);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the server did not listen within {limit:?}")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ensure_running(mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("the server died during the load: {status}"),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One POST over TLS; the servers' certificates are throwaway ones on loopback.
pub fn post_once(url: &str, body: &[u8]) -> Result<Vec<u8>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .http1_only()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await?
            .error_for_status()?;
        Ok(response.bytes().await?.to_vec())
    })
}
