//! The desktop app under test: a virtual X display (Xvfb) and tauri-driver in
//! front of WebKitWebDriver. Each is a process group killed on drop, so the app
//! that WebKitWebDriver started goes too, also when a test panics.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::free_port;

/// A process group, killed (SIGTERM, then SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pg = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &pg]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &pg]).status();
        let _ = self.0.wait();
    }
}

fn spawn_group(mut cmd: Command, what: &str) -> Group {
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({e}): run scripts/setup.sh first"));
    Group(child)
}

/// A virtual X display.
#[derive(Debug)]
pub struct Xvfb {
    _group: Group,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        // the first display number nobody uses
        let n = (90..400)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("no free X display number");
        let display = format!(":{n}");
        let mut cmd = Command::new("Xvfb");
        cmd.args([&display, "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let group = spawn_group(cmd, "Xvfb");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start on {display}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Xvfb { _group: group, display }
    }
}

/// `tauri-driver` (from `cargo install tauri-driver`), in front of Debian's
/// WebKitWebDriver.
#[derive(Debug)]
pub struct Driver {
    _group: Group,
    pub url: String,
}

/// Where `cargo install` put tauri-driver.
pub fn tauri_driver() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let p = PathBuf::from(cargo_home).join("bin/tauri-driver");
    assert!(p.exists(), "{} missing: run scripts/setup.sh first", p.display());
    p
}

impl Driver {
    /// Start it with `env` (which the app it launches inherits).
    pub fn start(env: &[(&str, &str)], log: &Path) -> Driver {
        let (port, native) = (free_port(), free_port());
        let out = std::fs::File::create(log).expect("driver log");
        let mut cmd = Command::new(tauri_driver());
        cmd.args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .envs(env.iter().copied())
            .stdout(out.try_clone().expect("driver log"))
            .stderr(out);
        let group = spawn_group(cmd, "tauri-driver");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { _group: group, url: format!("http://127.0.0.1:{port}") }
    }
}

/// The desktop app built next to the `floe` binary.
pub fn app_bin() -> PathBuf {
    if let Ok(p) = std::env::var("FLOE_DESKTOP_BIN") {
        return PathBuf::from(p);
    }
    let p = crate::floe_bin().with_file_name("floe-desktop");
    assert!(p.exists(), "{} not built: run `cargo build -p floe-desktop`", p.display());
    p
}

/// What the desktop session gives an app beside the X display, on the test's session
/// bus: a tray host's `org.kde.StatusNotifierWatcher` (so the app's tray registers a
/// StatusNotifierItem, read by the tests over the bus) and a notification server
/// (`org.freedesktop.Notifications`) that writes every notification it receives to a
/// file, one JSON object per line. Both leave the bus when dropped.
pub struct SessionServices {
    _conn: zbus::blocking::Connection,
    pub notified: PathBuf,
}

impl std::fmt::Debug for SessionServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionServices").field("notified", &self.notified).finish_non_exhaustive()
    }
}

struct Watcher {
    items: Vec<String>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    /// An item registers by bus name or (AppIndicator does) by object path: kept as
    /// `<sender><path>`, the form a tray host reads.
    #[expect(clippy::needless_pass_by_value, reason = "zbus hands the header over by value")]
    fn register_status_notifier_item(
        &mut self,
        service: &str,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) {
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        let item = if service.starts_with('/') {
            format!("{sender}{service}")
        } else {
            format!("{service}/StatusNotifierItem")
        };
        if !self.items.contains(&item) {
            self.items.push(item);
        }
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

struct Notifications {
    log: PathBuf,
    next: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[expect(clippy::too_many_arguments, reason = "the Notify call of the specification")]
    fn notify(
        &mut self,
        app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        use std::io::Write;
        self.next += 1;
        let line = serde_json::json!({"app": app_name, "summary": summary, "body": body});
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(f, "{line}");
        }
        self.next
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("floe-tests".into(), "floe".into(), "1".into(), "1.2".into())
    }

    fn close_notification(&self, _id: u32) {}
}

impl SessionServices {
    /// Serve both on the bus at `address`; notifications go to `notified`.
    pub fn start(address: &str, notified: &Path) -> SessionServices {
        let conn = (|| {
            zbus::blocking::connection::Builder::address(address)?
                .name("org.kde.StatusNotifierWatcher")?
                .name("org.freedesktop.Notifications")?
                .serve_at("/StatusNotifierWatcher", Watcher { items: Vec::new() })?
                .serve_at(
                    "/org/freedesktop/Notifications",
                    Notifications { log: notified.to_path_buf(), next: 0 },
                )?
                .build()
        })()
        .unwrap_or_else(|e| panic!("cannot serve the tray watcher and notifications: {e}"));
        SessionServices { _conn: conn, notified: notified.to_path_buf() }
    }
}
