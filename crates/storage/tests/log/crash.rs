//! SIGKILL crash test: a child process (this test binary, re-executed) appends from several
//! threads to a real directory and prints each LSN once `append_durable` returned; the parent
//! kills it at a random moment, or at a kill point inside the log writer (the child's file layer
//! stops before a write, between a write and its fdatasync, or in the middle of a group's write
//! and waits there to be killed). After each kill, every printed record is on disk, with its
//! payload, when the log is reopened; the next round appends to the same directory.

use crate::Rng;
use botflow_storage::log::{HotLog, LogDir, LogFile, LogOptions, OsDir};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DIR_VAR: &str = "BOTFLOW_LOG_CRASH_DIR";
const KILL_VAR: &str = "BOTFLOW_LOG_KILL_POINT";
const ROUNDS: u64 = 10;
/// Small segments so rounds cross segment boundaries.
const SEGMENT_BYTES: u64 = 16 * 1024;

/// Where the child's file layer stops and waits to be killed.
#[derive(Clone, Copy, Debug)]
enum KillPoint {
    /// Before the n-th write.
    BeforeWrite(u64),
    /// After the n-th write, before the fdatasync that covers it (a group's record write may be
    /// followed by a write of preallocated zeros before their one sync).
    BeforeSync(u64),
    /// After writing the first half of the n-th write.
    MidWrite(u64),
}

impl KillPoint {
    fn parse(text: &str) -> Option<KillPoint> {
        let (kind, n) = text.split_once(':')?;
        let n = n.parse().ok()?;
        match kind {
            "before-write" => Some(KillPoint::BeforeWrite(n)),
            "before-sync" => Some(KillPoint::BeforeSync(n)),
            "mid-write" => Some(KillPoint::MidWrite(n)),
            _ => None,
        }
    }
}

/// Prints that the child reached its kill point and waits (bounded) for the SIGKILL.
fn halt_here() {
    println!("KILLPOINT");
    std::io::stdout().flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(100));
    }
    panic!("the parent never killed the child at its kill point");
}

/// The real directory, with a kill point.
struct KillDir {
    inner: OsDir,
    point: Option<KillPoint>,
    writes: Arc<AtomicU64>,
    last_write: Arc<Mutex<u64>>,
}

struct KillFile {
    inner: Box<dyn LogFile>,
    point: Option<KillPoint>,
    writes: Arc<AtomicU64>,
    last_write: Arc<Mutex<u64>>,
}

impl LogFile for KillFile {
    fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        self.inner.read_all()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        *self.last_write.lock().unwrap() = n;
        match self.point {
            Some(KillPoint::BeforeWrite(k)) if k == n => halt_here(),
            Some(KillPoint::MidWrite(k)) if k == n && data.len() > 1 => {
                self.inner.write_at(offset, &data[..data.len() / 2])?;
                halt_here();
            }
            _ => {}
        }
        self.inner.write_at(offset, data)
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        let n = *self.last_write.lock().unwrap();
        // The first sync after the n-th write: the write just before it may be a later one.
        if matches!(self.point, Some(KillPoint::BeforeSync(k)) if n >= k) {
            halt_here();
        }
        self.inner.sync_data()
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.truncate(len)
    }
}

impl KillDir {
    fn wrap(&self, inner: Box<dyn LogFile>) -> Box<dyn LogFile> {
        Box::new(KillFile {
            inner,
            point: self.point,
            writes: Arc::clone(&self.writes),
            last_write: Arc::clone(&self.last_write),
        })
    }
}

impl LogDir for KillDir {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.inner.list()
    }
    fn open(&self, name: &str) -> std::io::Result<Box<dyn LogFile>> {
        Ok(self.wrap(self.inner.open(name)?))
    }
    fn create(&self, name: &str) -> std::io::Result<Box<dyn LogFile>> {
        Ok(self.wrap(self.inner.create(name)?))
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.inner.remove(name)
    }
}

/// The appender run by the child process; does nothing unless the parent set the env vars.
#[test]
#[ignore = "run by crash::acknowledged_records_survive_sigkill in a child process"]
fn crash_child_appender() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let point = std::env::var(KILL_VAR)
        .ok()
        .and_then(|p| KillPoint::parse(&p));
    let kill_dir = KillDir {
        inner: OsDir::open(&dir).unwrap(),
        point,
        writes: Arc::new(AtomicU64::new(0)),
        last_write: Arc::new(Mutex::new(0)),
    };
    let (log, _) = HotLog::open(
        Arc::new(kill_dir),
        LogOptions {
            segment_bytes: SEGMENT_BYTES,
            ..LogOptions::default()
        },
    )
    .unwrap();
    let log = Arc::new(log);
    println!("READY");
    std::io::stdout().flush().unwrap();
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = Arc::clone(&log);
            let stdout = Arc::clone(&stdout);
            std::thread::spawn(move || {
                // Bounded: the parent kills the child long before this ends.
                for i in 0..200_000u64 {
                    let body = body(t, i);
                    let lsn = log.append_durable(body.as_bytes()).unwrap();
                    let mut out = stdout.lock().unwrap();
                    writeln!(out, "A {lsn} {body}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// The payload thread `t` appends as its `i`-th record.
fn body(t: u64, i: u64) -> String {
    format!("t{t}-{i}-{}", "p".repeat((i % 50) as usize))
}

/// An acknowledgement line `A {lsn} {body}`, unless it was cut off by the kill.
fn parse_ack(line: &str) -> Option<(u64, String)> {
    let (lsn, text) = line.strip_prefix("A ")?.split_once(' ')?;
    let mut parts = text.strip_prefix('t')?.splitn(3, '-');
    let t = parts.next()?.parse().ok()?;
    let i = parts.next()?.parse().ok()?;
    if body(t, i) != text {
        return None;
    }
    Some((lsn.parse().ok()?, text.to_owned()))
}

/// Runs one child; kills it at its kill point or at a random moment; returns its lines.
fn run_child(dir: &Path, point: Option<String>, rng: &mut Rng) -> Vec<String> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "crash::crash_child_appender",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(point) = &point {
        command.env(KILL_VAR, point);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let awaited = if point.is_some() {
        "KILLPOINT"
    } else {
        "READY"
    };
    while !lines.lock().unwrap().iter().any(|l| l.ends_with(awaited)) {
        assert!(Instant::now() < deadline, "child never printed {awaited}");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if point.is_none() {
        // The random moment of the crash: somewhere in the next 0..150 ms of appending.
        std::thread::sleep(Duration::from_millis(rng.below(150)));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    Arc::try_unwrap(lines).unwrap().into_inner().unwrap()
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Rng::new(seed);
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    for round in 0..ROUNDS {
        let point = match round % 4 {
            0 => None,
            1 => Some(format!("before-write:{}", 1 + rng.below(200))),
            2 => Some(format!("before-sync:{}", 1 + rng.below(200))),
            _ => Some(format!("mid-write:{}", 1 + rng.below(200))),
        };
        let lines = run_child(dir.path(), point.clone(), &mut rng);
        acknowledged.extend(lines.iter().filter_map(|line| parse_ack(line)));
        let (log, recovered) = HotLog::open_path(
            dir.path(),
            LogOptions {
                segment_bytes: SEGMENT_BYTES,
                ..LogOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("round {round} ({point:?}, seed {seed}): {e}"));
        let on_disk: BTreeMap<u64, Vec<u8>> = recovered.records.into_iter().collect();
        for (lsn, body) in &acknowledged {
            assert_eq!(
                on_disk.get(lsn).map(|b| b.as_slice()),
                Some(body.as_bytes()),
                "round {round} ({point:?}, seed {seed}): acknowledged LSN {lsn} lost"
            );
        }
        drop(log);
    }
    assert!(
        acknowledged.len() > 100,
        "children acknowledged only {} records",
        acknowledged.len()
    );
    println!(
        "log crash test: {ROUNDS} rounds, {} acknowledged records all recovered, seed {seed}",
        acknowledged.len()
    );
}
