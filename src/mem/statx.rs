//! `StatxResult`: what `prep_statx` reports, shaped like `os.stat_result`.

use pyo3::prelude::*;

/// The metadata a :meth:`IoUring.prep_statx` completion carries in
/// :attr:`CompletionEvent.extra`. The attributes are named and typed as in
/// :class:`os.stat_result`; a field the kernel did not fill (see :attr:`stx_mask`) is ``0``.
#[pyclass(frozen, get_all, module = "century_ring")]
pub struct StatxResult {
    /// File type and permission bits, as :func:`stat.S_ISREG` and friends expect.
    pub st_mode: u32,
    /// Inode number.
    pub st_ino: u64,
    /// Device of the filesystem holding the file (``os.makedev(major, minor)``).
    pub st_dev: u64,
    /// Number of hard links.
    pub st_nlink: u32,
    /// Owner's user id.
    pub st_uid: u32,
    /// Owner's group id.
    pub st_gid: u32,
    /// Size in bytes.
    pub st_size: u64,
    /// Last access, in seconds since the epoch.
    pub st_atime: f64,
    /// Last modification of the contents, in seconds since the epoch.
    pub st_mtime: f64,
    /// Last status change, in seconds since the epoch.
    pub st_ctime: f64,
    /// Creation ("birth") time, in seconds since the epoch; ``0.0`` where the filesystem does
    /// not record it.
    pub st_birthtime: f64,
    /// Last access, in nanoseconds since the epoch.
    pub st_atime_ns: i128,
    /// Last modification, in nanoseconds since the epoch.
    pub st_mtime_ns: i128,
    /// Last status change, in nanoseconds since the epoch.
    pub st_ctime_ns: i128,
    /// Creation time, in nanoseconds since the epoch.
    pub st_birthtime_ns: i128,
    /// Preferred block size for I/O.
    pub st_blksize: u32,
    /// Number of 512-byte blocks allocated.
    pub st_blocks: u64,
    /// The device a device file stands for (``os.makedev(major, minor)``).
    pub st_rdev: u64,
    /// The ``STATX_*`` bits of the fields the kernel filled.
    pub stx_mask: u32,
    /// ``STATX_ATTR_*`` attribute bits (compressed, immutable, append-only, ...).
    pub stx_attributes: u64,
}

fn nanoseconds(t: &libc::statx_timestamp) -> i128 {
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

fn seconds(t: &libc::statx_timestamp) -> f64 {
    t.tv_sec as f64 + f64::from(t.tv_nsec) * 1e-9
}

/// `makedev(3)`, as glibc encodes it.
fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

impl From<&libc::statx> for StatxResult {
    fn from(s: &libc::statx) -> Self {
        StatxResult {
            st_mode: u32::from(s.stx_mode),
            st_ino: s.stx_ino,
            st_dev: makedev(s.stx_dev_major, s.stx_dev_minor),
            st_nlink: s.stx_nlink,
            st_uid: s.stx_uid,
            st_gid: s.stx_gid,
            st_size: s.stx_size,
            st_atime: seconds(&s.stx_atime),
            st_mtime: seconds(&s.stx_mtime),
            st_ctime: seconds(&s.stx_ctime),
            st_birthtime: seconds(&s.stx_btime),
            st_atime_ns: nanoseconds(&s.stx_atime),
            st_mtime_ns: nanoseconds(&s.stx_mtime),
            st_ctime_ns: nanoseconds(&s.stx_ctime),
            st_birthtime_ns: nanoseconds(&s.stx_btime),
            st_blksize: s.stx_blksize,
            st_blocks: s.stx_blocks,
            st_rdev: makedev(s.stx_rdev_major, s.stx_rdev_minor),
            stx_mask: s.stx_mask,
            stx_attributes: s.stx_attributes,
        }
    }
}

#[pymethods]
impl StatxResult {
    fn __repr__(&self) -> String {
        format!(
            "StatxResult(st_mode={:#o}, st_ino={}, st_size={}, st_nlink={}, st_uid={}, \
             st_gid={}, st_mtime_ns={})",
            self.st_mode,
            self.st_ino,
            self.st_size,
            self.st_nlink,
            self.st_uid,
            self.st_gid,
            self.st_mtime_ns
        )
    }
}
