//! A buffered output file that hashes and counts its bytes on the way to disk, so the
//! manifest's sha256 and size cost no second read.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Large enough that SHA-256 and the kernel see big blocks, small enough to not matter.
const BUFFER_BYTES: usize = 256 * 1024;

pub(super) struct OutFile {
    inner: BufWriter<Hashing>,
}

/// Size and checksum of a finished file.
pub(super) struct Written {
    pub bytes: u64,
    pub sha256: String,
}

struct Hashing {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl OutFile {
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        let hashing = Hashing {
            file: File::create(path)?,
            hasher: Sha256::new(),
            bytes: 0,
        };
        Ok(OutFile {
            inner: BufWriter::with_capacity(BUFFER_BYTES, hashing),
        })
    }

    /// Flushes everything and returns what was written.
    pub(super) fn finish(self) -> io::Result<Written> {
        let mut hashing = self.inner.into_inner().map_err(|e| e.into_error())?;
        hashing.flush()?;
        Ok(Written {
            bytes: hashing.bytes,
            sha256: hex::encode(hashing.hasher.finalize()),
        })
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // Forwarded explicitly: BufWriter's write_all has a fast path the default lacks.
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
