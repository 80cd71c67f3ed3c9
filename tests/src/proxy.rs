//! A storage fault proxy: a loopback TCP proxy that reads the HTTP/1.1 requests
//! passing from Floe to a storage server (moto, Azurite) and, by rules the test sets
//! while it runs, forwards them, answers them with an error status itself, resets the
//! connection, cuts the response half-way, stalls, or holds the request until the
//! test has killed the client: a kill at "the manifests are being written" is a
//! kill while Floe waits for that very request.
//!
//! Every request is logged (time, method, path, body bytes), so a test can check
//! what the storage saw: retries, bytes per second, which objects in what order.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the proxy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Pass it on and relay the answer.
    Forward,
    /// Answer it with this HTTP status and an empty body, without passing it on.
    Status(u16),
    /// Reset the connection (RST) instead of passing it on.
    Reset,
    /// Pass it on, then relay only half of the first bytes of the answer and close.
    Cut,
    /// Wait this long, then pass it on.
    Stall(Duration),
    /// Do not pass it on; tell the test ([`Proxy::held`]) and keep the client waiting
    /// until [`Proxy::release`], then close the connection.
    Hold,
    /// Tell the test, wait for [`Proxy::release`], then pass it on (the test acts
    /// in between: another writer commits first).
    HoldThenForward,
    /// Pass it on and let the server act on it, but keep its answer from the client:
    /// tell the test, wait for [`Proxy::release`], then close.
    ForwardThenHold,
}

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without the `?` (empty if none): a listing's delimiter is here.
    pub query: String,
    pub body_bytes: usize,
    pub action: Action,
}

/// A rule: requests with `method` (any if `None`) whose path contains `path` (ends
/// with it, if `path_ends`) get `action`, after the first `skip` of them passed,
/// `times` times.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<String>,
    pub path: String,
    pub path_ends: bool,
    pub skip: usize,
    pub times: usize,
    pub action: Action,
}

impl Rule {
    /// Every request, `times` times.
    pub fn all(action: Action, times: usize) -> Rule {
        Rule { method: None, path: String::new(), path_ends: false, skip: 0, times, action }
    }

    /// PUTs of paths containing `path`.
    pub fn put(path: &str, skip: usize, times: usize, action: Action) -> Rule {
        let path_ends = false;
        Rule { method: Some("PUT".into()), path: path.into(), path_ends, skip, times, action }
    }

    /// PUTs of paths ending in `path` (the object itself, not its copies).
    pub fn put_end(path: &str, skip: usize, times: usize, action: Action) -> Rule {
        Rule { path_ends: true, ..Rule::put(path, skip, times, action) }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let here =
            if self.path_ends { path.ends_with(&self.path) } else { path.contains(&self.path) };
        self.method.as_deref().is_none_or(|m| m == method) && here
    }
}

#[derive(Default)]
struct Shared {
    rules: Vec<Rule>,
    log: Vec<Seen>,
    /// Holds begun so far; hold number `n` waits until `released > n`.
    holds: usize,
    released: usize,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    port: u16,
    upstream: String,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    held: Mutex<Receiver<Seen>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("port", &self.port).field("upstream", &self.upstream).finish()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let (m, cv) = &*self.shared;
        m.lock().unwrap().released = usize::MAX;
        cv.notify_all();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Proxy {
    /// Listen on a free loopback port in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let addr = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let (shared, addr, tx) = (shared.clone(), addr.clone(), tx.clone());
                    std::thread::spawn(move || serve(&client, &addr, &shared, &tx));
                }
            });
        }
        Proxy { port, upstream: upstream.to_string(), shared, held: Mutex::new(rx), stop }
    }

    /// The proxy's address, to give Floe instead of the server's.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `env` with the server's address replaced by the proxy's.
    pub fn env(&self, env: &[(String, String)]) -> Vec<(String, String)> {
        let server = self.upstream.trim_end_matches('/');
        env.iter().map(|(k, v)| (k.clone(), v.replace(server, &self.url()))).collect()
    }

    /// Add a rule (rules apply in the order they were added; the first that
    /// matches and has times left wins).
    pub fn rule(&self, rule: Rule) {
        self.shared.0.lock().unwrap().rules.push(rule);
    }

    /// Drop every rule: forward everything from now on.
    pub fn clear(&self) {
        self.shared.0.lock().unwrap().rules.clear();
    }

    /// The request held by a [`Action::Hold`] or [`Action::ForwardThenHold`] rule,
    /// waiting at most `timeout`.
    pub fn held(&self, timeout: Duration) -> Option<Seen> {
        self.held.lock().unwrap().recv_timeout(timeout).ok()
    }

    /// Let every request held so far go on (or its connection close).
    pub fn release(&self) {
        let (m, cv) = &*self.shared;
        let mut s = m.lock().unwrap();
        s.released = s.released.max(s.holds);
        cv.notify_all();
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Seen> {
        self.shared.0.lock().unwrap().log.clone()
    }
}

/// One request: its head as sent, method, path and body.
struct Request {
    head: Vec<u8>,
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if text.starts_with("transfer-encoding:") && text.contains("chunked") {
            chunked = true;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let first = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let body = if chunked { read_chunked(r)? } else { read_exact(r, content_length)? };
    Some(Request { head, method, path, query, body })
}

fn read_exact(r: &mut BufReader<TcpStream>, n: usize) -> Option<Vec<u8>> {
    let mut body = vec![0; n];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

/// A chunked body, kept as sent (sizes and all), so it is forwarded unchanged.
fn read_chunked(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut size_line = Vec::new();
        r.read_until(b'\n', &mut size_line).ok()?;
        raw.extend_from_slice(&size_line);
        let text = String::from_utf8_lossy(&size_line);
        let size = usize::from_str_radix(text.trim().split(';').next()?, 16).ok()?;
        let chunk = read_exact(r, size + 2)?;
        raw.extend_from_slice(&chunk);
        if size == 0 {
            return Some(raw);
        }
    }
}

/// The action for a request, and the log entry; a rule's count goes down.
fn decide(shared: &Mutex<Shared>, req: &Request) -> Seen {
    let mut s = shared.lock().unwrap();
    let mut action = Action::Forward;
    for rule in s.rules.iter_mut().filter(|r| r.matches(&req.method, &req.path)) {
        if rule.skip > 0 {
            rule.skip -= 1;
            continue;
        }
        if rule.times > 0 {
            rule.times -= 1;
            action = rule.action.clone();
            break;
        }
    }
    let seen = Seen {
        at: Instant::now(),
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body_bytes: req.body.len(),
        action,
    };
    s.log.push(seen.clone());
    seen
}

/// Begin a hold: its ticket, for [`wait_released`].
fn begin_hold(shared: &(Mutex<Shared>, Condvar)) -> usize {
    let mut s = shared.0.lock().unwrap();
    s.holds += 1;
    s.holds - 1
}

fn wait_released(shared: &(Mutex<Shared>, Condvar), ticket: usize) {
    let (m, cv) = shared;
    let mut s = m.lock().unwrap();
    while s.released <= ticket {
        s = cv.wait(s).unwrap();
    }
}

/// What the server-to-client relay does with the answer to the current request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Relay {
    Pass,
    Cut,
    /// Keep answers from the client until hold `ticket` is released.
    Hold(usize),
}

fn serve(
    client: &TcpStream,
    upstream: &str,
    shared: &Arc<(Mutex<Shared>, Condvar)>,
    tx: &Sender<Seen>,
) {
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let relay = Arc::new(Mutex::new(Relay::Pass));
    spawn_relay(client, &server, &relay, shared);
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let (mut to_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    while let Some(req) = read_request(&mut reader) {
        let seen = decide(&shared.0, &req);
        let forward = |to_server: &mut TcpStream| {
            to_server.write_all(&req.head).is_ok() && to_server.write_all(&req.body).is_ok()
        };
        match &seen.action {
            Action::Forward => {}
            Action::Stall(d) => std::thread::sleep(*d),
            Action::Status(code) => {
                let reply = format!(
                    "HTTP/1.1 {code} Injected\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
                );
                if to_client.write_all(reply.as_bytes()).is_err() {
                    break;
                }
                continue;
            }
            Action::Reset => {
                let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
                break;
            }
            Action::Cut => *relay.lock().unwrap() = Relay::Cut,
            Action::Hold => {
                let ticket = begin_hold(shared);
                let _ = tx.send(seen.clone());
                wait_released(shared, ticket);
                break;
            }
            Action::HoldThenForward => {
                let ticket = begin_hold(shared);
                let _ = tx.send(seen.clone());
                wait_released(shared, ticket);
            }
            Action::ForwardThenHold => {
                let ticket = begin_hold(shared);
                *relay.lock().unwrap() = Relay::Hold(ticket);
            }
        }
        if !forward(&mut to_server) {
            break;
        }
        if let Relay::Hold(ticket) = *relay.lock().unwrap() {
            let _ = tx.send(seen.clone());
            wait_released(shared, ticket);
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// Copy the server's answers to the client, as `relay` says.
fn spawn_relay(
    client: &TcpStream,
    server: &TcpStream,
    relay: &Arc<Mutex<Relay>>,
    shared: &Arc<(Mutex<Shared>, Condvar)>,
) {
    let (mut from, mut to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let (relay, shared) = (relay.clone(), shared.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mode = *relay.lock().unwrap();
            match mode {
                Relay::Pass => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Relay::Cut => {
                    let _ = to.write_all(&buf[..n / 2]);
                    break;
                }
                Relay::Hold(ticket) => {
                    wait_released(&shared, ticket);
                    break;
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
