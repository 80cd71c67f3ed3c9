//! Is a file finished being written?
//!
//! A fixed delay alone is not trusted. The evidence, gathered by [`inspect`], is:
//! an HDF5 superblock whose "open for write" flag is set, a lock held by the writer,
//! a NetCDF-3 file shorter than its header says, and the time since the last change.
//! [`decide`] turns that evidence into a verdict; it is pure (the caller passes the
//! clock), so it is tested exhaustively without files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Names that instruments and copy tools use for files still being written.
/// They are ignored until renamed.
pub fn is_temporary_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with(".~")
        || name.starts_with("~$")
        || name.starts_with('.')
        || [".tmp", ".part", ".partial", ".crdownload", ".swp", ".lock", "~"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// What was observed about a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// HDF5 superblock (v2/v3) has the write-access or SWMR-write flag set.
    pub hdf5_open_for_write: bool,
    /// A shared lock could not be taken: a writer holds an exclusive one.
    pub locked_by_writer: bool,
    /// A process of this machine has the file open with write access (its pid).
    pub open_for_write_by: Option<u32>,
    /// The file-system events say it was written and not closed since (the
    /// daemon's watcher sees writers that `/proc` does not show, e.g. another
    /// user's).
    pub open_by_events: bool,
    /// NetCDF-3 header says the file should be this long (None: not NetCDF-3, or unknown).
    pub classic_expected_len: Option<u64>,
    /// NetCDF-3 header in streaming mode (record count not yet written).
    pub classic_streaming: bool,
    /// Current length.
    pub len: u64,
    /// Last modification.
    pub mtime: Option<SystemTime>,
}

/// Files the file-system events say were written and not closed since: fed by a
/// watcher (`written` on every data change, `closed` on close-after-write,
/// `forget` on removal), asked by the completeness check. A mark older than
/// [`WrittenNotClosed::STALE`] without a new write is dropped: a close event can be
/// lost (an overflowing event queue), and the quiet period and the other checks
/// still stand then.
#[derive(Debug, Default)]
pub struct WrittenNotClosed {
    marks: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, std::time::Instant>>,
}

impl WrittenNotClosed {
    /// A logger writes at least every few minutes; an hour without a write and
    /// without a close is a lost event, not a writer.
    pub const STALE: Duration = Duration::from_secs(3600);

    fn marks(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::path::PathBuf, std::time::Instant>>
    {
        floe_core::lock(&self.marks)
    }

    pub fn written(&self, path: &Path, at: std::time::Instant) {
        self.marks().insert(path.to_path_buf(), at);
    }

    pub fn closed(&self, path: &Path) {
        self.marks().remove(path);
    }

    /// Every mark (the events were lost: a rescan starts from nothing).
    pub fn forget_all(&self) {
        self.marks().clear();
    }

    pub fn is_open(&self, path: &Path, now: std::time::Instant) -> bool {
        let mut marks = self.marks();
        marks.retain(|_, at| now.duration_since(*at) < Self::STALE);
        marks.contains_key(path)
    }
}

impl Evidence {
    /// A NetCDF-3 file whose header is complete and whose bytes cover every record
    /// the header counts: the records it announces can be read while the writer
    /// appends more (what `--live` takes, once they have settled).
    pub fn records_on_disk(&self) -> bool {
        !self.classic_streaming
            && self.classic_expected_len.is_some_and(|n| n != u64::MAX && self.len >= n)
    }
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// Still being written; the reason says how Floe knows.
    Writing(String),
    /// Nothing says it is being written, but it changed `age` ago, less than the
    /// quiet period: it is complete once it stays unchanged `quiet - age` longer.
    Recent {
        age: Duration,
        quiet: Duration,
    },
}

impl Completeness {
    /// Why the file is not taken yet (`None` when it is complete).
    pub fn reason(&self) -> Option<String> {
        match self {
            Completeness::Complete => None,
            Completeness::Writing(r) => Some(r.clone()),
            Completeness::Recent { age, quiet } => Some(format!(
                "it changed {:.1} s ago (quiet period {:.1} s)",
                age.as_secs_f64(),
                quiet.as_secs_f64()
            )),
        }
    }
}

/// Decide from the evidence, at time `now`, with a quiet period.
pub fn decide(e: &Evidence, now: SystemTime, quiet: Duration) -> Completeness {
    if e.hdf5_open_for_write {
        return Completeness::Writing("its HDF5 writer still has it open (superblock flag)".into());
    }
    if e.locked_by_writer {
        return Completeness::Writing("another process holds a write lock on it".into());
    }
    if let Some(pid) = e.open_for_write_by {
        return Completeness::Writing(format!("process {pid} has it open for writing"));
    }
    if e.open_by_events {
        return Completeness::Writing(
            "it was written and has not been closed since (file-system events)".into(),
        );
    }
    if e.classic_streaming {
        return Completeness::Writing("its NetCDF-3 header has no record count yet".into());
    }
    if e.classic_expected_len == Some(u64::MAX) {
        return Completeness::Writing("its NetCDF-3 header is not complete yet".into());
    }
    if let Some(expected) = e.classic_expected_len
        && e.len < expected
    {
        return Completeness::Writing(format!(
            "it holds {} of the {} bytes its NetCDF-3 header announces",
            e.len, expected
        ));
    }
    if let Some(mtime) = e.mtime {
        let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
        if age < quiet {
            return Completeness::Recent { age, quiet };
        }
    }
    Completeness::Complete
}

const HDF5_MAGIC: [u8; 8] = [0x89, b'H', b'D', b'F', 0x0D, 0x0A, 0x1A, 0x0A];

/// Where the HDF5 superblock sits: 0, 512, 1024, 2048, ...
fn find_superblock(f: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    let mut off = 0u64;
    let mut buf = [0u8; 8];
    while off + 8 <= len {
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut buf)?;
        if buf == HDF5_MAGIC {
            return Ok(Some(off));
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    Ok(None)
}

fn hdf5_write_flag(f: &mut File, sb: u64) -> std::io::Result<bool> {
    let mut head = [0u8; 12];
    f.seek(SeekFrom::Start(sb))?;
    if f.read(&mut head)? < 12 {
        return Ok(false);
    }
    let version = head[8];
    // Superblock v2/v3: byte 11 holds the file consistency flags.
    // bit 0: opened for write access, bit 2: SWMR write access.
    Ok(version >= 2 && head[11] & 0b101 != 0)
}

/// What a NetCDF-3 header says about the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassicHeader {
    /// Bytes the file must have for every variable's data to be present.
    pub expected_len: u64,
    /// The record count is the "streaming" marker: the writer has not finished.
    pub streaming: bool,
}

/// Parse just enough of a NetCDF-3 (CDF-1, CDF-2, CDF-5) header to know how long the
/// file must be. Works on a file still being written, where a full reader refuses
/// it; `None` when the bytes are not a complete classic header (yet).
pub fn classic_header(bytes: &[u8]) -> Option<ClassicHeader> {
    struct Cur<'a> {
        b: &'a [u8],
        at: usize,
        wide: bool,
    }
    impl Cur<'_> {
        fn u32(&mut self) -> Option<u64> {
            let v = self.b.get(self.at..self.at + 4)?;
            self.at += 4;
            Some(u64::from(u32::from_be_bytes(v.try_into().ok()?)))
        }
        fn u64(&mut self) -> Option<u64> {
            let v = self.b.get(self.at..self.at + 8)?;
            self.at += 8;
            Some(u64::from_be_bytes(v.try_into().ok()?))
        }
        /// NON_NEG: 4 bytes in CDF-1/2, 8 in CDF-5
        fn count(&mut self) -> Option<u64> {
            if self.wide { self.u64() } else { self.u32() }
        }
        fn skip(&mut self, n: u64) -> Option<()> {
            let padded = n.checked_add(3)? / 4 * 4;
            self.at = self.at.checked_add(usize::try_from(padded).ok()?)?;
            (self.at <= self.b.len()).then_some(())
        }
        fn name(&mut self) -> Option<()> {
            let n = self.count()?;
            self.skip(n)
        }
        /// A list header: tag and element count (ABSENT gives 0).
        fn list(&mut self, tag: u64) -> Option<u64> {
            let t = self.u32()?;
            let n = self.count()?;
            (t == tag || (t == 0 && n == 0)).then_some(n)
        }
        fn attrs(&mut self) -> Option<()> {
            for _ in 0..self.list(0x0C)? {
                self.name()?;
                let ty = self.u32()?;
                let n = self.count()?;
                self.skip(n.checked_mul(type_size(ty)?)?)?;
            }
            Some(())
        }
    }
    fn type_size(t: u64) -> Option<u64> {
        Some(match t {
            1 | 2 | 7 => 1,
            3 | 8 => 2,
            4 | 5 | 9 => 4,
            6 | 10 | 11 => 8,
            _ => return None,
        })
    }
    if bytes.get(..3)? != b"CDF" {
        return None;
    }
    let version = *bytes.get(3)?;
    let wide = version == 5;
    let mut c = Cur { b: bytes, at: 4, wide };
    let numrecs = c.count()?;
    let streaming = if wide { numrecs == u64::MAX } else { numrecs == 0xFFFF_FFFF };
    let mut dims = Vec::new();
    for _ in 0..c.list(0x0A)? {
        c.name()?;
        dims.push(c.count()?);
    }
    c.attrs()?;
    struct Var {
        record: bool,
        vsize: u64,
        begin: u64,
    }
    let mut vars = Vec::new();
    for _ in 0..c.list(0x0B)? {
        c.name()?;
        let ndims = c.count()?;
        let mut record = false;
        for k in 0..ndims {
            let id = c.count()?;
            if k == 0 && dims.get(usize::try_from(id).ok()?) == Some(&0) {
                record = true;
            }
        }
        c.attrs()?;
        let _ty = c.u32()?;
        let vsize = c.count()?;
        let begin = if version == 1 { c.u32()? } else { c.u64()? };
        vars.push(Var { record, vsize, begin });
    }
    let recsize: u64 = vars.iter().filter(|v| v.record).map(|v| v.vsize).sum();
    let numrecs = if streaming { 0 } else { numrecs };
    let mut end = c.at as u64;
    for v in &vars {
        let e = if v.record {
            if numrecs == 0 {
                continue;
            }
            v.begin + (numrecs - 1) * recsize + v.vsize
        } else {
            v.begin + v.vsize
        };
        end = end.max(e);
    }
    // a lone record variable is not padded to 4 bytes: allow for that
    let lone_record = vars.iter().filter(|v| v.record).count() == 1;
    let slack = if lone_record { 3 * numrecs.min(1) } else { 0 };
    Some(ClassicHeader { expected_len: end.saturating_sub(slack), streaming })
}

/// Files that processes of this machine hold open with write access, by (device,
/// inode), with one such process: what `lsof` and `fuser` see in `/proc`. A
/// NetCDF-3 logger syncs a self-consistent file between records (the header's
/// record count matches the size), so only this tells it from a finished file.
/// Files written from another machine (a network share) are not seen: the header
/// checks and the quiet period remain for those. Elsewhere than Linux: empty (macOS
/// would ask `proc_pidinfo`, Windows the Restart Manager).
#[derive(Debug, Default)]
pub struct OpenForWrite(std::collections::HashMap<(u64, u64), u32>);

impl OpenForWrite {
    /// One look at every process's open files (one pass, however many candidates).
    ///
    /// Test hook: with `FLOE_TEST_BLIND_PROC=1` the look finds nothing, as for a
    /// writer this machine's `/proc` does not show (another user's process, another
    /// machine's over a share); the tests of the other evidence use it.
    pub fn scan() -> OpenForWrite {
        let mut found = std::collections::HashMap::new();
        if std::env::var_os("FLOE_TEST_BLIND_PROC").is_some_and(|v| v == "1") {
            return OpenForWrite(found);
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            let me = std::process::id();
            let Ok(procs) = std::fs::read_dir("/proc") else {
                return OpenForWrite(found);
            };
            for p in procs.flatten() {
                let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if pid == me {
                    continue;
                }
                let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                    continue; // gone, or not ours to see
                };
                for fd in fds.flatten() {
                    // most descriptors are sockets, pipes and devices: stat first,
                    // read the access mode only for regular files
                    let Ok(m) = std::fs::metadata(fd.path()) else { continue };
                    let info = p.path().join("fdinfo").join(fd.file_name());
                    if m.is_file() && writable(&info) {
                        found.insert((m.dev(), m.ino()), pid);
                    }
                }
            }
        }
        OpenForWrite(found)
    }

    /// The process holding `meta`'s file open for writing, if any.
    pub fn holder(&self, meta: &std::fs::Metadata) -> Option<u32> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            self.0.get(&(meta.dev(), meta.ino())).copied()
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = meta;
            None
        }
    }
}

/// Whether `/proc/<pid>/fdinfo/<fd>` says the descriptor was opened for writing
/// (`flags:` in octal; access mode O_WRONLY = 1 or O_RDWR = 2).
#[cfg(target_os = "linux")]
fn writable(fdinfo: &Path) -> bool {
    std::fs::read_to_string(fdinfo).ok().is_some_and(|t| fdinfo_writable(&t))
}

/// [`writable`] on the text of an fdinfo file.
pub fn fdinfo_writable(text: &str) -> bool {
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| matches!(flags & 0o3, 1 | 2))
}

/// Gather the evidence about a file (I/O; never modifies or locks it for long);
/// `writers` is this pass's look at the processes that hold files open for writing.
pub fn inspect(path: &Path, writers: &OpenForWrite) -> std::io::Result<Evidence> {
    let mut f = File::open(path)?;
    let meta = f.metadata()?;
    let mut e = Evidence {
        len: meta.len(),
        mtime: meta.modified().ok(),
        open_for_write_by: writers.holder(&meta),
        ..Default::default()
    };
    if meta.is_dir() {
        return Ok(e);
    }
    if let Some(sb) = find_superblock(&mut f, e.len)? {
        e.hdf5_open_for_write = hdf5_write_flag(&mut f, sb)?;
    } else {
        // the header of a NetCDF-3 file (headers are small; 1 MiB covers any real one)
        let mut head = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        (&mut f).take(1 << 20).read_to_end(&mut head)?;
        if let Some(h) = classic_header(&head) {
            e.classic_streaming = h.streaming;
            e.classic_expected_len = Some(h.expected_len);
        } else if head.starts_with(b"CDF") {
            // a classic file whose header is not all there yet
            e.classic_expected_len = Some(u64::MAX);
        }
    }
    // A writer holding an exclusive lock (HDF5 >= 1.10 locks the files it writes)
    // makes a shared, non-blocking lock attempt fail. Released at once.
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
        }
        Err(std::fs::TryLockError::WouldBlock) => e.locked_by_writer = true,
        Err(std::fs::TryLockError::Error(_)) => {}
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    /// A CDF-1 header: unlimited `time`, fixed `n` = 2, record var `x(time)` float,
    /// fixed var `y(n)` short; `numrecs` records.
    fn cdf1(numrecs: u32) -> (Vec<u8>, u64) {
        let mut b = b"CDF\x01".to_vec();
        let be = |v: u32| v.to_be_bytes();
        let name = |b: &mut Vec<u8>, s: &str| {
            b.extend(be(s.len() as u32));
            b.extend(s.as_bytes());
            while !b.len().is_multiple_of(4) {
                b.push(0);
            }
        };
        b.extend(be(numrecs));
        b.extend(be(0x0A));
        b.extend(be(2));
        name(&mut b, "time");
        b.extend(be(0));
        name(&mut b, "n");
        b.extend(be(2));
        b.extend(be(0)); // no global attributes
        b.extend(be(0));
        b.extend(be(0x0B));
        b.extend(be(2));
        // y(n): short, vsize 4; x(time): float, vsize 4; `begin` patched below
        let mut begins = Vec::new();
        for (var, dim, ty) in [("y", 1u32, 3u32), ("x", 0, 5)] {
            name(&mut b, var);
            b.extend(be(1));
            b.extend(be(dim));
            b.extend(be(0));
            b.extend(be(0));
            b.extend(be(ty));
            b.extend(be(4));
            begins.push(b.len());
            b.extend(be(0));
        }
        let y_begin = b.len() as u32;
        let x_begin = y_begin + 4;
        b[begins[0]..begins[0] + 4].copy_from_slice(&be(y_begin));
        b[begins[1]..begins[1] + 4].copy_from_slice(&be(x_begin));
        (b, u64::from(x_begin) + 4 * u64::from(numrecs))
    }

    #[test]
    fn classic_headers_announce_the_file_length() {
        let (h, expected) = cdf1(5);
        assert_eq!(
            classic_header(&h),
            Some(ClassicHeader { expected_len: expected - 3, streaming: false }),
            "a lone record variable may end unpadded"
        );
        let (h, _) = cdf1(0xFFFF_FFFF);
        assert!(classic_header(&h).is_some_and(|c| c.streaming));
        // a header cut short is not a header yet; random bytes are none
        let (h, _) = cdf1(5);
        assert_eq!(classic_header(&h[..h.len() - 6]), None);
        assert_eq!(classic_header(b"CDF\x01\xff\xff"), None);
        assert_eq!(classic_header(b"\x89HDF\r\n"), None);
    }

    #[test]
    fn fdinfo_access_modes() {
        assert!(fdinfo_writable("pos:\t0\nflags:\t0100002\nmnt_id:\t25\n")); // O_RDWR
        assert!(fdinfo_writable("pos:\t0\nflags:\t02100001\n")); // O_WRONLY|O_CLOEXEC
        assert!(!fdinfo_writable("pos:\t0\nflags:\t0100000\n")); // O_RDONLY
        assert!(!fdinfo_writable("garbage"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_file_this_test_holds_open_for_writing_is_seen_from_another_process() {
        // the scan skips its own process, so hold the file in a child
        let d = std::env::temp_dir().join(format!("floe-open-{}", std::process::id()));
        std::fs::write(&d, b"x").unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec sleep 5 3>>'{}'", d.display()))
            .spawn()
            .unwrap();
        let meta = std::fs::metadata(&d).unwrap();
        let mut seen = None;
        for _ in 0..50 {
            seen = OpenForWrite::scan().holder(&meta);
            if seen.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen.is_some(), "the writer was not seen");
        assert_eq!(OpenForWrite::scan().holder(&meta), None, "nor after it closed");
        let _ = std::fs::remove_file(&d);
    }

    #[test]
    fn temporary_names() {
        for n in ["a.nc.tmp", ".~lock.a.nc#", "x.part", ".hidden.nc", "a.nc~", "b.NC.TMP"] {
            assert!(is_temporary_name(n), "{n}");
        }
        for n in ["a.nc", "data_2024.nc4", "store.zarr", "tmpfile.nc"] {
            assert!(!is_temporary_name(n), "{n}");
        }
    }

    #[test]
    fn every_reason_to_wait_is_honoured() {
        let quiet = Duration::from_secs(2);
        let base = Evidence { len: 100, mtime: Some(t(100)), ..Default::default() };
        assert_eq!(decide(&base, t(110), quiet), Completeness::Complete);
        // each piece of evidence alone makes it wait, whatever the age
        let cases = [
            Evidence { hdf5_open_for_write: true, ..base.clone() },
            Evidence { locked_by_writer: true, ..base.clone() },
            Evidence { open_for_write_by: Some(4242), ..base.clone() },
            Evidence { open_by_events: true, ..base.clone() },
            Evidence { classic_streaming: true, ..base.clone() },
            Evidence { classic_expected_len: Some(101), ..base.clone() },
        ];
        for c in cases {
            assert!(matches!(decide(&c, t(10_000), quiet), Completeness::Writing(_)), "{c:?}");
        }
        // too young: merely recent, not provably being written
        assert!(matches!(decide(&base, t(101), quiet), Completeness::Recent { .. }));
        // an empty file waits while young; once quiet it is complete (and reading it
        // then reports it as empty, so the user hears of it)
        let empty = Evidence { len: 0, ..base.clone() };
        assert!(matches!(decide(&empty, t(101), quiet), Completeness::Recent { .. }));
        assert_eq!(decide(&empty, t(200), quiet), Completeness::Complete);
        // exact length is complete; clock going backwards is treated as "just changed"
        let exact = Evidence { classic_expected_len: Some(100), ..base.clone() };
        assert_eq!(decide(&exact, t(200), quiet), Completeness::Complete);
        assert!(matches!(decide(&base, t(50), quiet), Completeness::Recent { .. }));
    }

    #[test]
    fn written_and_not_closed_until_closed_or_stale() {
        let w = WrittenNotClosed::default();
        let t0 = std::time::Instant::now();
        let (a, b) = (Path::new("/d/a.nc"), Path::new("/d/b.nc"));
        w.written(a, t0);
        w.written(b, t0);
        assert!(w.is_open(a, t0) && w.is_open(b, t0));
        w.closed(a);
        assert!(!w.is_open(a, t0) && w.is_open(b, t0));
        // a later write renews the mark; an hour without one drops it
        w.written(b, t0 + Duration::from_secs(3000));
        assert!(w.is_open(b, t0 + Duration::from_secs(3700)));
        assert!(!w.is_open(b, t0 + Duration::from_secs(6700)));
        w.written(a, t0);
        w.forget_all();
        assert!(!w.is_open(a, t0));
    }

    #[test]
    fn records_are_on_disk_once_a_classic_header_is_covered() {
        let base = Evidence { len: 100, ..Default::default() };
        assert!(!base.records_on_disk(), "not NetCDF-3");
        let covered = Evidence { classic_expected_len: Some(100), ..base.clone() };
        assert!(covered.records_on_disk());
        assert!(!Evidence { len: 99, ..covered.clone() }.records_on_disk());
        assert!(!Evidence { classic_streaming: true, ..covered.clone() }.records_on_disk());
        assert!(!Evidence { classic_expected_len: Some(u64::MAX), ..base }.records_on_disk());
    }
}
