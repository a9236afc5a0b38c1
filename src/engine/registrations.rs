//! What a ring registers with the kernel: its file table, buffers, provided buffer groups and
//! eventfd, changed through the ring's submitter.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::ring::Ring;
use crate::mem::caller_buffer::HeldBuffer;
use crate::resources::buffer_group::Group;

impl Ring {
    pub fn register_files(&mut self, fds: &[i32]) -> PyResult<()> {
        let fd = self.fd();
        self.files.register(&self.ring.submitter(), fd, fds)
    }

    pub fn register_files_sparse(&mut self, count: u32) -> PyResult<()> {
        let fd = self.fd();
        self.files
            .register_sparse(&self.ring.submitter(), fd, count, &self.support)
    }

    /// Replaces slots of the file table; returns how many the kernel updated.
    pub fn update_files(&mut self, offset: u32, fds: &[i32]) -> PyResult<usize> {
        let fd = self.fd();
        self.files.update(&self.ring.submitter(), fd, offset, fds)
    }

    pub fn unregister_files(&mut self) -> PyResult<()> {
        self.files.unregister(&self.ring.submitter())
    }

    pub fn register_buffers(&mut self, held: Vec<HeldBuffer>) -> PyResult<()> {
        self.buffers.register(&self.ring.submitter(), held)
    }

    /// Unregisters the buffers, after submitting every queued entry: the kernel binds an entry
    /// to a registration when it consumes the entry, and each must bind to the one it holds.
    pub fn unregister_buffers(&mut self) -> PyResult<()> {
        if self.buffers.is_registered() && self.pending() > 0 {
            self.submit()?;
            let deadline = Instant::now() + Duration::from_secs(1);
            while self.pending() > 0 {
                // Only an SQPOLL ring gets here: its kernel thread has not caught up yet.
                if Instant::now() >= deadline {
                    return Err(PyRuntimeError::new_err(format!(
                        "unregister_buffers: {} queued entries were not taken up by the \
                         kernel's submission thread within a second; try again",
                        self.pending()
                    )));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        self.buffers.unregister(&self.ring.submitter())
    }

    /// Registers a provided buffer group with the kernel.
    pub fn register_buffer_group(&mut self, group: Group) -> PyResult<Arc<Group>> {
        self.buffer_groups.register(&self.ring.submitter(), group)
    }

    /// Refuses a group id that is taken on this ring (see [`BufferGroups::check_free`]).
    pub fn check_group_id_free(&mut self, id: u16) -> PyResult<()> {
        self.buffer_groups.check_free(id)
    }

    /// Unregisters the provided buffer group of this id; `false` if there is none.
    pub fn unregister_buffer_group(&mut self, id: u16) -> PyResult<bool> {
        self.buffer_groups.unregister(&self.ring.submitter(), id)
    }

    /// Keeps an eventfd the ring created, to close it with the ring.
    pub fn set_owned_eventfd(&mut self, fd: OwnedFd) {
        self.owned_eventfd = Some(fd);
    }

    pub fn register_eventfd(&self, fd: i32) -> io::Result<()> {
        self.ring.submitter().register_eventfd(fd)
    }
}
