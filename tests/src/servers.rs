//! Real storage servers on loopback, started by the tests and stopped when dropped
//! (also when a test panics).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process; killed and reaped on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop with SIGTERM (the server saves its state) and wait for it to exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Drop kills it if it did not stop in time
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn start(mut cmd: Command, port: u16, dir: Option<tempfile::TempDir>, what: &str) -> Server {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({e}): run scripts/setup.sh first"));
    let server = Server { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on port {port} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn cache() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    std::env::var("FLOE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(home).join(".cache/floe"))
}

/// moto's S3 server (from PyPI), next to the reference Python.
pub fn moto() -> Server {
    let port = free_port();
    let bin = crate::python().parent().map(|p| p.join("moto_server")).unwrap_or_default();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    start(cmd, port, None, "moto_server")
}

/// Azurite's blob service (from npm), with its data in a temporary folder.
pub fn azurite() -> Server {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = azurite_at(dir.path(), None);
    server._dir = Some(dir);
    server
}

/// Azurite keeping its data in `location`, on `port` (a free one if `None`): stop it
/// and start it again on the same port and location to simulate an outage.
pub fn azurite_at(location: &std::path::Path, port: Option<u16>) -> Server {
    let port = port.unwrap_or_else(free_port);
    let node =
        std::env::var("FLOE_NODE").map(PathBuf::from).unwrap_or_else(|_| cache().join("node"));
    let mut cmd = Command::new(node.join("node_modules/.bin/azurite-blob"));
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ])
    .arg("--location")
    .arg(location);
    start(cmd, port, None, "azurite-blob")
}
