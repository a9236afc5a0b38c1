//! What the running kernel's io_uring can do: the opcodes its probe lists, and the features
//! that have no opcode of their own. Each refusal names what is missing and the Linux version
//! that added it.

use io_uring::{opcode, Probe};
use pyo3::exceptions::PyNotImplementedError;
use pyo3::PyErr;

/// Kernel features an operation or a call may need beyond its opcode.
#[derive(Clone, Copy)]
pub enum Feature {
    /// Files opened, accepted or closed straight into or out of a fixed slot.
    DirectDescriptors,
    /// `IORING_FILE_INDEX_ALLOC` and sparse file tables.
    AllocatedSlots,
    /// `IORING_RECV_MULTISHOT`.
    MultishotReceive,
    /// `IORING_RECVSEND_BUNDLE`.
    ReceiveBundles,
    /// `IORING_FEAT_EXT_ARG`: waits with a timeout and no timeout entry.
    TimedWait,
    /// `IORING_REGISTER_PBUF_RING`, which no probe reports: the register call tells.
    BufferRings,
}

impl Feature {
    /// What the feature is, and the Linux version that added it.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Feature::DirectDescriptors => (
                "installing files into registered slots (direct descriptors)",
                "5.15",
            ),
            Feature::AllocatedSlots => (
                "ALLOC_FILE_INDEX and sparse file tables (IORING_FILE_INDEX_ALLOC, \
                 IORING_RSRC_REGISTER_SPARSE)",
                "5.19",
            ),
            Feature::MultishotReceive => ("IORING_RECV_MULTISHOT", "6.0"),
            Feature::ReceiveBundles => ("IORING_RECVSEND_BUNDLE", "6.10"),
            Feature::TimedWait => ("IORING_FEAT_EXT_ARG", "5.11"),
            Feature::BufferRings => ("IORING_REGISTER_PBUF_RING", "5.19"),
        }
    }

    /// The error for `user` (the method, as the caller wrote it) when the kernel lacks this.
    pub fn missing(self, user: &str) -> PyErr {
        let (what, since) = self.describe();
        unsupported(user, what, since)
    }
}

/// `NotImplementedError`: `user` needs `what`, which Linux `since` added.
pub fn unsupported(user: &str, what: &str, since: &str) -> PyErr {
    PyNotImplementedError::new_err(format!(
        "{user} needs {what}, added in Linux {since}; the running kernel does not support it"
    ))
}

/// The running kernel's answers, read once when a ring is made.
pub struct KernelSupport {
    /// `None` when the kernel predates `IORING_REGISTER_PROBE`; everything is then attempted.
    probe: Option<Box<Probe>>,
    ext_arg: bool,
    recv_bundle: bool,
}

impl KernelSupport {
    pub fn of(ring: &io_uring::IoUring) -> Self {
        let mut probe = Box::new(Probe::new());
        let probe = match ring.submitter().register_probe(&mut probe) {
            Ok(()) => Some(probe),
            Err(_) => None,
        };
        let params = ring.params();
        KernelSupport {
            probe,
            ext_arg: params.is_feature_ext_arg(),
            recv_bundle: params.is_feature_recvsend_bundle(),
        }
    }

    /// Whether the kernel lists `opcode`.
    #[inline]
    pub fn opcode(&self, opcode: u8) -> bool {
        self.probe.as_ref().is_none_or(|p| p.is_supported(opcode))
    }

    pub fn has(&self, feature: Feature) -> bool {
        match feature {
            // Features without a probe bit of their own, known by an opcode that arrived in
            // the same release.
            Feature::DirectDescriptors => self.opcode(opcode::MkDirAt::CODE),
            Feature::AllocatedSlots => self.opcode(opcode::Socket::CODE),
            Feature::MultishotReceive => self.opcode(opcode::SendZc::CODE),
            Feature::ReceiveBundles => self.recv_bundle,
            Feature::TimedWait => self.ext_arg,
            // Only the register call can tell; assume it is there until it says otherwise.
            Feature::BufferRings => true,
        }
    }

    /// `NotImplementedError` naming `user` unless the kernel has `feature`.
    pub fn require(&self, feature: Feature, user: &str) -> Result<(), PyErr> {
        if self.has(feature) {
            Ok(())
        } else {
            Err(feature.missing(user))
        }
    }
}
