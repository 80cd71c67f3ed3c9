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

    /// The URL on another address (a server in a network namespace).
    pub fn url_at(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
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

pub(crate) fn free_port() -> u16 {
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

/// moto's S3 server checking credentials: after the first `free` requests (unchecked,
/// which `tests/python/storage.py s3-user` spends on an IAM user with its key), every
/// request must be signed by a key moto knows (`INITIAL_NO_AUTH_ACTION_COUNT`).
pub fn moto_with_auth(free: u32) -> Server {
    let port = free_port();
    let bin = crate::python().parent().map(|p| p.join("moto_server")).unwrap_or_default();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", free.to_string());
    start(cmd, port, None, "moto_server")
}

/// moto with one bucket made.
pub fn moto_bucket(bucket: &str) -> Server {
    let server = moto();
    let r = crate::py("storage.py", &["s3-bucket", &server.url(), bucket]);
    assert_eq!(r.code, 0, "cannot make bucket {bucket}: {}", r.stderr);
    server
}

/// Azurite with one container made.
pub fn azurite_container(container: &str) -> Server {
    let server = azurite();
    let r = crate::py("storage.py", &["az-container", &server.url(), container]);
    assert_eq!(r.code, 0, "cannot make container {container}: {}", r.stderr);
    server
}

/// Azurite's blob service (from npm), with its data in a temporary folder.
pub fn azurite() -> Server {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = azurite_at(dir.path(), None);
    server._dir = Some(dir);
    server
}

/// Azurite whose only account is `account` with `key` (base64): nothing but that
/// key opens it, not the emulator's well-known one.
pub fn azurite_account(account: &str, key: &str) -> Server {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = azurite_with(dir.path(), None, Some(&format!("{account}:{key}")));
    server._dir = Some(dir);
    server
}

/// Azurite keeping its data in `location`, on `port` (a free one if `None`): stop it
/// and start it again on the same port and location to simulate an outage.
pub fn azurite_at(location: &std::path::Path, port: Option<u16>) -> Server {
    azurite_with(location, port, None)
}

fn azurite_with(location: &std::path::Path, port: Option<u16>, accounts: Option<&str>) -> Server {
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
    if let Some(a) = accounts {
        cmd.env("AZURITE_ACCOUNTS", a);
    }
    start(cmd, port, None, "azurite-blob")
}

/// A private D-Bus session with GNOME Keyring's Secret Service on it, unlocked,
/// its keyrings in a temporary home: the OS keychain as a desktop has it. Both
/// daemons are killed on drop.
#[derive(Debug)]
pub struct SecretService {
    bus: Child,
    keyring: Child,
    /// `DBUS_SESSION_BUS_ADDRESS` for the programs that should see it.
    pub address: String,
    pub home: tempfile::TempDir,
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for c in [&mut self.keyring, &mut self.bus] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl SecretService {
    pub fn start() -> SecretService {
        use std::io::Write;
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = home.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap_or_else(|e| panic!("{e}"));
        let address = format!("unix:path={}", home.path().join("bus").display());
        // A session bus without D-Bus activation. With the standard session
        // config, any client that asks for org.freedesktop.secrets before our
        // keyring owns the name (our own readiness probe, or Floe) makes the bus
        // start the system's gnome-keyring-daemon with the real HOME and no
        // unlocked keyring; ours then logs "another secret service is running"
        // and exits, and every keychain call fails with "result not returned
        // from SS API". That was the keychain test's failure on CI, and it
        // reproduced here 2 times in 8 starts side by side.
        let config = home.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<busconfig><type>session</type><listen>{address}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dbus-daemon ({e}): run scripts/setup.sh"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !home.path().join("bus").exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let log_path = home.path().join("keyring.log");
        let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("{e}"));
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--components=secrets", "--unlock"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", home.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start gnome-keyring-daemon ({e}): run scripts/setup.sh")
            });
        if let Some(mut stdin) = keyring.stdin.take() {
            // the password of the new login keyring; it is unlocked with it
            let _ = stdin.write_all(b"floe-test-keyring");
        }
        let service = SecretService { bus, keyring, address, home };
        // Ready means what Floe needs: the default collection exists and is
        // unlocked (a name owned on the bus, what `secret-tool search` showed,
        // says less; without the default collection the keyring crate fails with
        // "result not returned from SS API").
        let deadline = Instant::now() + Duration::from_secs(20);
        while !service.default_collection_is_unlocked() {
            assert!(
                Instant::now() < deadline,
                "the Secret Service did not come up; gnome-keyring-daemon said: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    /// Whether the `default` alias names a collection and it is unlocked,
    /// asked over D-Bus with `dbus-send` (the Secret Service API itself).
    fn default_collection_is_unlocked(&self) -> bool {
        let ask = |args: &[&str]| {
            Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .args(["--print-reply", "--dest=org.freedesktop.secrets"])
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let Some(alias) = ask(&[
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.ReadAlias",
            "string:default",
        ]) else {
            return false;
        };
        let Some(path) = alias.split('"').nth(1).filter(|p| *p != "/") else {
            return false;
        };
        ask(&[
            path,
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Locked",
        ])
        .is_some_and(|locked| locked.contains("boolean false"))
    }

    /// What the Secret Service holds for Floe's entry of `account`, read with
    /// libsecret's own tool (not through Floe).
    pub fn lookup(&self, account: &str) -> Option<String> {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "floe", "username", account])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .ok()?;
        (out.status.success() && !out.stdout.is_empty())
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A network namespace behind a slow, lossy link (`tests/python/slowlink.py`):
/// 10.77.0.2 inside, reached from here through `delay_ms` of delay and `loss` of
/// packet loss. The namespace goes when this is dropped.
#[derive(Debug)]
pub struct SlowLink {
    child: Child,
    pub namespace: String,
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.namespace]).status();
    }
}

impl SlowLink {
    /// The address of the far side.
    pub const FAR: &'static str = "10.77.0.2";

    pub fn start(delay_ms: u32, loss: f64) -> SlowLink {
        use std::io::BufRead;
        let namespace = format!("floe{}", std::process::id());
        let mut child = Command::new(crate::python())
            .arg(crate::root().join("tests/python/slowlink.py"))
            .arg(&namespace)
            .args(["--delay-ms", &delay_ms.to_string(), "--loss", &loss.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start slowlink.py: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != "READY" {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!(
                "the slow link did not come up ({err}); it needs root, /dev/net/tun and iproute2"
            );
        }
        SlowLink { child, namespace }
    }

    /// Azurite inside the namespace, on the far address.
    pub fn azurite(&self) -> Server {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = 10000;
        let node =
            std::env::var("FLOE_NODE").map(PathBuf::from).unwrap_or_else(|_| cache().join("node"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(node.join("node_modules/.bin/azurite-blob"))
            .args(["--blobHost", Self::FAR, "--blobPort", &port.to_string()])
            .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--location"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start azurite in the namespace: {e}"));
        let server = Server { child, port, _dir: Some(dir) };
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr: std::net::SocketAddr =
            format!("{}:{port}", Self::FAR).parse().unwrap_or_else(|e| panic!("{e}"));
        while TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not listen behind the slow link");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }
}

/// The environment that points Floe and the reference readers at a moto server.
pub fn s3_env(server: &Server) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), server.url()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}

/// The environment that points Floe and the reference readers at an Azurite.
pub fn az_env(server: &Server) -> Vec<(String, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
        ("AZURITE_BLOB_STORAGE_URL".into(), server.url()),
    ]
}

/// Borrowed pairs, as `floe_env` and `py_env` take them.
pub fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect()
}
