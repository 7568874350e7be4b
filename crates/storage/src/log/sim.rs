//! A simulated file layer for tests (feature `test-support`): it keeps, per file, the bytes
//! made durable by a sync and the writes since then, so a test can simulate a power loss that
//! keeps the synced bytes plus any subset of the unsynced pages (the kernel writes pages back in
//! any order), and can inject `fdatasync` failures.

use super::file::{LogDir, LogFile};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The page size at which unsynced writes survive or vanish in a simulated crash.
pub const SIM_PAGE: usize = 4096;

#[derive(Debug, Default, Clone)]
struct SimFile {
    /// What a crash keeps at least.
    durable: Vec<u8>,
    /// What reads see now.
    current: Vec<u8>,
    /// Writes since the last sync, in order: (offset, bytes).
    unsynced: Vec<(usize, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<String, SimFile>,
    /// Syncs that fail from now on (counted down); a failed sync keeps its writes unsynced.
    failing_syncs: u32,
    /// While set, syncs block (a disk whose `fdatasync` does not return).
    held: bool,
    /// Syncs blocked by `held` now.
    blocked: u32,
    syncs: u64,
    sync_attempts: u64,
}

/// A simulated directory; clones share the same files.
#[derive(Debug, Default, Clone)]
pub struct SimDir {
    state: Arc<Mutex<SimState>>,
    released: Arc<Condvar>,
}

impl SimDir {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next `count` syncs fail with an I/O error.
    pub fn fail_next_syncs(&self, count: u32) {
        self.lock().failing_syncs = count;
    }

    /// How many syncs succeeded so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// How many syncs were attempted so far (failed ones included).
    pub fn sync_attempts(&self) -> u64 {
        self.lock().sync_attempts
    }

    /// While `held`, every sync blocks until released (a hung `fdatasync`).
    pub fn hold_syncs(&self, held: bool) {
        self.lock().held = held;
        self.released.notify_all();
    }

    /// How many syncs are blocked by [`SimDir::hold_syncs`] now.
    pub fn blocked_syncs(&self) -> u32 {
        self.lock().blocked
    }

    /// The current bytes of a file, if it exists.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().files.get(name).map(|f| f.current.clone())
    }

    /// Replaces a file's bytes, durably (to damage a file between runs).
    pub fn set_bytes(&self, name: &str, bytes: Vec<u8>) {
        let mut state = self.lock();
        let file = state.files.entry(name.to_owned()).or_default();
        file.durable = bytes.clone();
        file.current = bytes;
        file.unsynced.clear();
    }

    /// The directory after a simulated power loss: every file keeps its synced bytes plus the
    /// unsynced pages for which `keep` answers true (asked once per written page, in order).
    pub fn crash(&self, mut keep: impl FnMut() -> bool) -> SimDir {
        let state = self.lock();
        let mut files = BTreeMap::new();
        for (name, file) in &state.files {
            let mut bytes = file.durable.clone();
            for (offset, data) in &file.unsynced {
                let mut at = *offset;
                let end = offset + data.len();
                while at < end {
                    let page_end = ((at / SIM_PAGE) + 1) * SIM_PAGE;
                    let chunk_end = page_end.min(end);
                    if keep() {
                        if bytes.len() < chunk_end {
                            bytes.resize(chunk_end, 0);
                        }
                        bytes[at..chunk_end]
                            .copy_from_slice(&data[at - offset..chunk_end - offset]);
                    }
                    at = chunk_end;
                }
            }
            files.insert(
                name.clone(),
                SimFile {
                    durable: bytes.clone(),
                    current: bytes,
                    unsynced: Vec::new(),
                },
            );
        }
        SimDir {
            state: Arc::new(Mutex::new(SimState {
                files,
                ..SimState::default()
            })),
            released: Arc::new(Condvar::new()),
        }
    }
}

/// A handle on one simulated file.
struct SimHandle {
    dir: SimDir,
    name: String,
}

impl SimHandle {
    fn with<T>(&self, f: impl FnOnce(&mut SimFile) -> T) -> io::Result<T> {
        let mut state = self.dir.lock();
        let file = state
            .files
            .get_mut(&self.name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, self.name.clone()))?;
        Ok(f(file))
    }
}

impl LogFile for SimHandle {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        self.with(|file| file.current.clone())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let offset = offset as usize;
        self.with(|file| {
            if file.current.len() < offset + data.len() {
                file.current.resize(offset + data.len(), 0);
            }
            file.current[offset..offset + data.len()].copy_from_slice(data);
            file.unsynced.push((offset, data.to_vec()));
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.dir.lock();
        state.sync_attempts += 1;
        while state.held {
            state.blocked += 1;
            state = self
                .dir
                .released
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.blocked -= 1;
        }
        if state.failing_syncs > 0 {
            state.failing_syncs -= 1;
            return Err(io::Error::other("injected fdatasync failure (EIO)"));
        }
        state.syncs += 1;
        let file = state
            .files
            .get_mut(&self.name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, self.name.clone()))?;
        file.durable = file.current.clone();
        file.unsynced.clear();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with(|file| {
            file.current.truncate(len as usize);
            file.durable = file.current.clone();
            file.unsynced.clear();
        })
    }
}

impl LogDir for SimDir {
    fn location(&self) -> String {
        "<simulated>".to_owned()
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().files.keys().cloned().collect())
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        if !self.lock().files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned()));
        }
        Ok(Box::new(SimHandle {
            dir: self.clone(),
            name: name.to_owned(),
        }))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let mut state = self.lock();
        if state.files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_owned(),
            ));
        }
        state.files.insert(name.to_owned(), SimFile::default());
        drop(state);
        Ok(Box::new(SimHandle {
            dir: self.clone(),
            name: name.to_owned(),
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.lock()
            .files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_owned()))
    }
}
