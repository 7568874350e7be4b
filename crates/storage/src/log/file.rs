//! The file layer between the log and the operating system: a directory of segment files that
//! can be listed, created, read, written at an offset, synced (`fdatasync`), truncated and
//! removed. [`OsDir`] is the real one; tests put a fault-injecting layer in its place.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One open segment file.
pub trait LogFile: Send {
    /// Every byte of the file.
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
    /// Writes all of `data` at `offset` (not yet durable).
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes every write so far durable (`fdatasync` on Linux).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes and makes that durable.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// A directory of segment files.
pub trait LogDir: Send + Sync {
    /// A human-readable location for error messages (the directory path).
    fn location(&self) -> String;
    /// The names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> io::Result<Box<dyn LogFile>>;
    /// Creates an empty file and makes its existence durable (the directory is synced).
    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>>;
    /// Removes a file and makes the removal durable.
    fn remove(&self, name: &str) -> io::Result<()>;
}

/// The real file layer: a directory on disk.
#[derive(Debug, Clone)]
pub struct OsDir {
    path: PathBuf,
}

impl OsDir {
    /// The directory at `path`, created (with its parents) when missing.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        std::fs::create_dir_all(path.as_ref())?;
        Ok(Self {
            path: path.as_ref().to_path_buf(),
        })
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }
}

/// A segment file on disk.
struct OsFile(File);

impl LogFile for OsFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.0.seek(SeekFrom::Start(0))?;
        self.0.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.sync_all()
    }
}

impl LogDir for OsDir {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path.join(name))?;
        Ok(Box::new(OsFile(file)))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path.join(name))?;
        self.sync_dir()?;
        Ok(Box::new(OsFile(file)))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))?;
        self.sync_dir()
    }
}
