//! Atomic commits and content hashes.
//!
//! A file is committed by writing a temp file in the destination directory, fsyncing it,
//! renaming it over the destination and fsyncing the directory: a reader (or a resumed run)
//! sees either the old state or the whole new file, never a torn one.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::IoError;

/// A file being written that becomes visible at `dest` only on [`commit`](Self::commit).
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
    /// Whether the commit fsyncs the file and its directory (false: a scratch file a re-run of
    /// the task writes again, [`AtomicFile::scratch`]).
    durable: bool,
}

impl AtomicFile {
    /// Creates the temp file beside `dest` (creating parent directories).
    pub fn create(dest: &Path) -> Result<Self, IoError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| IoError::os(dir, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(temp_name(&name));
        let file = File::create(&tmp).map_err(|e| IoError::os(&tmp, e))?;
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
            durable: true,
        })
    }

    /// Like [`create`](Self::create), for a scratch file: renamed into place on commit but not
    /// fsynced (sort spills, merge rounds: a re-run of the task writes them again).
    pub fn scratch(dest: &Path) -> Result<Self, IoError> {
        let mut f = Self::create(dest)?;
        f.durable = false;
        Ok(f)
    }

    /// The temp file being written (for error messages).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The open temp file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file open until commit")
    }

    /// Takes the file out (for writers that consume it); give it back with [`commit_file`](Self::commit_file).
    pub fn take(&mut self) -> File {
        self.file.take().expect("file open until commit")
    }

    /// Fsyncs and renames into place.
    pub fn commit(mut self) -> Result<(), IoError> {
        let f = self.file.take().expect("file open until commit");
        self.commit_file(f)
    }

    /// Commits a file previously [`take`](Self::take)n (with the fsyncs unless it is a
    /// [`scratch`](Self::scratch) file).
    pub fn commit_file(mut self, f: File) -> Result<(), IoError> {
        let durable = self.durable;
        if durable {
            f.sync_all().map_err(|e| IoError::os(&self.tmp, e))?;
        }
        drop(f);
        fs::rename(&self.tmp, &self.dest).map_err(|e| IoError::os(&self.dest, e))?;
        if durable {
            sync_dir(self.dest.parent().unwrap_or(Path::new(".")));
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The temp file name of a commit to `name`: `.{name}.{pid}-{n}.tmp`, `n` counting this
/// process's temp files, so two threads committing the same file (two tasks fetching one shared
/// object) never share a temp file. The one temp naming scheme of every file curate writes (see
/// [`is_temp_name`]).
pub fn temp_name(name: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".{name}.{}-{n}.tmp", std::process::id())
}

/// The temp file of a commit to `dest`: beside it, named by [`temp_name`].
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(temp_name(&name))
}

/// Whether a file name is a temp file of an atomic commit ([`temp_name`]): never part of a
/// snapshot, never uploaded, removed on resume.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|r| r.strip_suffix(".tmp")) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.rsplit_once('.')
        .and_then(|(_, tag)| tag.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A buffered [`AtomicFile`]: the writer every step's streamed output goes through (one
/// temp-file scheme, one commit, the temp file removed if it is dropped uncommitted).
#[derive(Debug)]
pub struct AtomicWriter {
    atomic: AtomicFile,
    out: Option<BufWriter<File>>,
}

impl AtomicWriter {
    /// Starts writing `dest` with a `buffer`-byte buffer; committed with fsyncs.
    pub fn create(dest: &Path, buffer: usize) -> Result<Self, IoError> {
        Self::open(dest, buffer, true)
    }

    /// Starts writing a scratch file `dest`: renamed into place on commit, but not fsynced (a
    /// re-run of the task writes it again).
    pub fn scratch(dest: &Path, buffer: usize) -> Result<Self, IoError> {
        Self::open(dest, buffer, false)
    }

    fn open(dest: &Path, buffer: usize, durable: bool) -> Result<Self, IoError> {
        let mut atomic = if durable {
            AtomicFile::create(dest)?
        } else {
            AtomicFile::scratch(dest)?
        };
        let out = BufWriter::with_capacity(buffer, atomic.take());
        Ok(Self {
            atomic,
            out: Some(out),
        })
    }

    /// The temp file being written (for error messages).
    pub fn tmp_path(&self) -> &Path {
        &self.atomic.tmp
    }

    /// The buffered writer.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.out.as_mut().expect("open until commit")
    }

    /// Appends `bytes`; an error names the temp file.
    #[inline]
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let out = self.out.as_mut().expect("open until commit");
        out.write_all(bytes)
            .map_err(|e| IoError::os(&self.atomic.tmp, e))
    }

    /// Flushes the buffer and hands back the file (for a last touch such as patching a header)
    /// and the commit to finish with [`AtomicFile::commit_file`].
    pub fn into_file(mut self) -> Result<(File, AtomicFile), IoError> {
        let out = self.out.take().expect("open until commit");
        let f = out
            .into_inner()
            .map_err(|e| IoError::os(&self.atomic.tmp, e.into_error()))?;
        Ok((f, self.atomic))
    }

    /// Flushes, (fsyncs) and renames into place.
    pub fn commit(self) -> Result<(), IoError> {
        let (f, atomic) = self.into_file()?;
        atomic.commit_file(f)
    }
}

/// Writes `dest` atomically through [`AtomicWriter`]: `write` fills the buffered temp file,
/// which is then committed (with fsyncs when `durable`); on any error the temp file is removed.
pub fn write_with(
    dest: &Path,
    durable: bool,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let mut w = AtomicWriter::open(dest, 1 << 16, durable)?;
    write(w.writer()).map_err(|e| IoError::os(dest, e))?;
    w.commit()
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let mut f = AtomicFile::create(dest)?;
    f.file()
        .write_all(bytes)
        .map_err(|e| IoError::os(dest, e))?;
    f.commit()
}

/// Copies `src` to `dest` atomically, streaming (in-kernel where the OS can): a published
/// artefact of any size (multi-GB token files) never passes through memory.
pub fn copy_atomic(src: &Path, dest: &Path) -> Result<u64, IoError> {
    let mut r = File::open(src).map_err(|e| IoError::os(src, e))?;
    let mut f = AtomicFile::create(dest)?;
    let n = std::io::copy(&mut r, f.file()).map_err(|e| IoError::os(dest, e))?;
    f.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        let t = temp_name("part-00000.parquet");
        assert!(is_temp_name(&t), "{t}");
        assert!(is_temp_name(".model.bin.12-3.tmp"));
        for f in [
            "model.bin.tmp",
            ".model.bin.tmp",
            ".x.tmp-9",
            ".a.1-.tmp",
            "part-00000.parquet",
            ".curate",
        ] {
            assert!(!is_temp_name(f), "{f}");
        }
    }

    #[test]
    fn commit_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b.txt");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.file().write_all(b"partial").unwrap();
            // dropped without commit: nothing appears, temp is removed
        }
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 0);
        write_atomic(&dest, b"whole").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
        let copy = dir.path().join("c/copy.txt");
        assert_eq!(copy_atomic(&dest, &copy).unwrap(), 5);
        assert_eq!(fs::read(&copy).unwrap(), b"whole");
        let (size, h) = crate::hash::hash_file(&dest).unwrap();
        assert_eq!(size, 5);
        assert_eq!(h, crate::hash::hash_bytes(b"whole"));
    }
}
