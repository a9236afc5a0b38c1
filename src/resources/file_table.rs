//! The registered file table (fixed files): which slots a ring has, the register calls, and
//! the checks an operation naming a slot goes through.
//!
//! Files are the kernel's business: a registered slot holds its own reference to the file, and
//! operations in flight hold theirs, so nothing here must outlive anything.

use std::io;

use io_uring::types::DestinationSlot;
use io_uring::Submitter;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::base::args::int_in;
use crate::base::errors::{self, bad_arg};
use crate::base::kernel_support::{Feature, KernelSupport};

/// `IORING_FILE_INDEX_ALLOC`: as a `file_index`, asks the kernel to pick a free slot, whose
/// number then becomes the completion's result.
pub const ALLOC_FILE_INDEX: u32 = u32::MAX;

/// `IORING_MAX_FIXED_FILES`: the most slots a file table may have (Linux 5.13 and later; the
/// kernel also refuses more than `RLIMIT_NOFILE`).
pub const MAX_FILE_SLOTS: u32 = 1 << 20;

/// A `file_index` argument: a slot of the registered file table, or "any free slot".
#[derive(Clone, Copy)]
pub enum FileIndex {
    Slot(u32),
    Alloc,
}

impl FileIndex {
    /// Parses `file_index=`: `None`, a slot number, or `ALLOC_FILE_INDEX`.
    pub fn parse(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<FileIndex>> {
        let Some(value) = value.filter(|v| !v.is_none()) else {
            return Ok(None);
        };
        let index = int_in(value, "file_index", 0, u32::MAX.into()).map_err(|err| {
            if err.is_instance_of::<PyValueError>(value.py()) {
                bad_arg(format!(
                    "file_index must be a slot number (0 to {}) or ALLOC_FILE_INDEX, got {}",
                    MAX_FILE_SLOTS - 1,
                    value.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            } else {
                err
            }
        })? as u32;
        if index == ALLOC_FILE_INDEX {
            return Ok(Some(FileIndex::Alloc));
        }
        if index >= MAX_FILE_SLOTS {
            return Err(bad_arg(format!(
                "file_index must be a slot number (0 to {}) or ALLOC_FILE_INDEX, got {index}",
                MAX_FILE_SLOTS - 1
            )));
        }
        Ok(Some(FileIndex::Slot(index)))
    }
}

/// A ring's registered file table: the number of its slots, `None` when it has none.
#[derive(Default)]
pub struct FileTable {
    slots: Option<u32>,
}

impl FileTable {
    /// Registers a table of `fds` (`-1` for an empty slot).
    pub fn register(
        &mut self,
        submitter: &Submitter<'_>,
        ring_fd: i32,
        fds: &[i32],
    ) -> PyResult<()> {
        if let Some(slots) = self.slots {
            return Err(already_registered_files(slots));
        }
        submitter
            .register_files(fds)
            .map_err(|err| file_error(&err, "cannot register the files", fds, 0, ring_fd))?;
        self.slots = Some(fds.len() as u32);
        Ok(())
    }

    /// Registers a table of `count` empty slots.
    pub fn register_sparse(
        &mut self,
        submitter: &Submitter<'_>,
        ring_fd: i32,
        count: u32,
        support: &KernelSupport,
    ) -> PyResult<()> {
        support.require(Feature::AllocatedSlots, "register_files_sparse")?;
        if let Some(slots) = self.slots {
            return Err(already_registered_files(slots));
        }
        submitter
            .register_files_sparse(count)
            .map_err(|err| file_error(&err, "cannot register the file table", &[], 0, ring_fd))?;
        self.slots = Some(count);
        Ok(())
    }

    /// Replaces the slots from `offset` on with `fds`. Returns how many the kernel updated.
    pub fn update(
        &mut self,
        submitter: &Submitter<'_>,
        ring_fd: i32,
        offset: u32,
        fds: &[i32],
    ) -> PyResult<usize> {
        let slots = self.slots("update_registered_files", "updating slots")?;
        let end = u64::from(offset) + fds.len() as u64;
        if end > u64::from(slots) {
            return Err(bad_arg(format!(
                "update_registered_files: slots {offset} to {} are out of range: the registered \
                 file table has {slots} slots (0 to {})",
                end - 1,
                slots - 1
            )));
        }
        submitter.register_files_update(offset, fds).map_err(|err| {
            file_error(
                &err,
                "cannot update the registered files",
                fds,
                offset,
                ring_fd,
            )
        })
    }

    pub fn unregister(&mut self, submitter: &Submitter<'_>) -> PyResult<()> {
        if self.slots.is_none() {
            return Err(bad_arg(
                "unregister_files: no files are registered".to_owned(),
            ));
        }
        submitter
            .unregister_files()
            .map_err(|err| errors::os_error(&err, "cannot unregister the files"))?;
        self.slots = None;
        Ok(())
    }

    /// The number of slots, or the error that says to register a table first.
    fn slots(&self, method: &str, what: &str) -> PyResult<u32> {
        self.slots.ok_or_else(|| {
            bad_arg(format!(
                "{method}: {what} needs a registered file table; call register_files() or \
                 register_files_sparse() first"
            ))
        })
    }

    /// Checks that `slot` is a slot of the table; `name` is the argument that gave it.
    pub fn check_slot(&self, slot: u32, method: &str, name: &str) -> PyResult<()> {
        let slots = self.slots(method, &format!("{name} {slot}"))?;
        if slot >= slots {
            return Err(bad_arg(format!(
                "{method}: {name} {slot} is out of range: the registered file table has {slots} \
                 slots (0 to {})",
                slots - 1
            )));
        }
        Ok(())
    }

    /// The slot an operation that creates a file installs it into: checked against the table
    /// and the kernel's support.
    pub fn destination(
        &self,
        file_index: Option<FileIndex>,
        support: &KernelSupport,
        method: &str,
    ) -> PyResult<Option<DestinationSlot>> {
        let Some(file_index) = file_index else {
            return Ok(None);
        };
        support.require(Feature::DirectDescriptors, method)?;
        match file_index {
            FileIndex::Slot(slot) => {
                self.check_slot(slot, method, "file_index")?;
                Ok(Some(
                    DestinationSlot::try_from_slot_target(slot).expect("slots are below 2**20"),
                ))
            }
            FileIndex::Alloc => {
                support.require(Feature::AllocatedSlots, method)?;
                self.slots(method, "ALLOC_FILE_INDEX")?;
                Ok(Some(DestinationSlot::auto_target()))
            }
        }
    }
}

fn already_registered_files(slots: u32) -> PyErr {
    PyOSError::new_err((
        libc::EBUSY,
        format!(
            "a file table of {slots} slots is already registered on this ring; change slots \
             with update_registered_files(), or call unregister_files() first"
        ),
    ))
}

/// A register call's failure, naming the descriptor at fault when it can be found.
fn file_error(err: &io::Error, context: &str, fds: &[i32], offset: u32, ring_fd: i32) -> PyErr {
    let code = err.raw_os_error().unwrap_or(libc::EIO);
    let why = match code {
        libc::EBADF => fds
            .iter()
            .enumerate()
            .find_map(|(i, &fd)| bad_descriptor(fd, ring_fd).map(|why| (i, fd, why)))
            .map(|(i, fd, why)| {
                format!(
                    "fds[{i}] (for slot {}) = {fd} {why}",
                    u64::from(offset) + i as u64
                )
            })
            .unwrap_or_else(|| errors::strerror(code)),
        libc::EMFILE => format!(
            "{}: a file table may not have more slots than the open-file limit \
             (RLIMIT_NOFILE, ulimit -n)",
            errors::strerror(code)
        ),
        _ => errors::strerror(code),
    };
    PyOSError::new_err((code, format!("{context}: {why}")))
}

/// Why `fd` cannot be registered, if that can be seen from here.
fn bad_descriptor(fd: i32, ring_fd: i32) -> Option<&'static str> {
    if fd == -1 {
        return None;
    }
    if fd < -1 {
        return Some("is not a file descriptor");
    }
    // SAFETY: F_GETFD takes no pointer and only reads the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Some("is not an open file descriptor");
    }
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
    if fd == ring_fd || target.is_some_and(|t| t.as_os_str() == "anon_inode:[io_uring]") {
        return Some("is an io_uring instance, which cannot be registered as a file");
    }
    None
}
