//! Filesystem operations: unlink, rename, mkdir, symlink, link.

use std::ffi::CString;

use io_uring::opcode;
use io_uring::types::Fd;

use super::{OpInfo, Prepared};
use crate::mem::lent::Lent;

/// `unlinkat(2)`, for files and (with `AT_REMOVEDIR`) directories; owns the path.
pub const UNLINKAT: OpInfo = OpInfo {
    method: "prep_unlinkat",
    opcode: opcode::UnlinkAt::CODE,
    opcode_name: "IORING_OP_UNLINKAT",
    since: "5.11",
};

/// `renameat2(2)`; owns both paths.
pub const RENAMEAT: OpInfo = OpInfo {
    method: "prep_renameat",
    opcode: opcode::RenameAt::CODE,
    opcode_name: "IORING_OP_RENAMEAT",
    since: "5.11",
};

/// `mkdirat(2)`; owns the path.
pub const MKDIRAT: OpInfo = OpInfo {
    method: "prep_mkdirat",
    opcode: opcode::MkDirAt::CODE,
    opcode_name: "IORING_OP_MKDIRAT",
    since: "5.15",
};

/// `symlinkat(2)`; owns the target and the link path.
pub const SYMLINKAT: OpInfo = OpInfo {
    method: "prep_symlinkat",
    opcode: opcode::SymlinkAt::CODE,
    opcode_name: "IORING_OP_SYMLINKAT",
    since: "5.15",
};

/// `linkat(2)`; owns both paths.
pub const LINKAT: OpInfo = OpInfo {
    method: "prep_linkat",
    opcode: opcode::LinkAt::CODE,
    opcode_name: "IORING_OP_LINKAT",
    since: "5.15",
};

pub fn unlinkat(dir_fd: i32, path: CString, flags: i32) -> Prepared {
    let entry = opcode::UnlinkAt::new(Fd(dir_fd), path.as_ptr())
        .flags(flags)
        .build();
    Prepared {
        op: &UNLINKAT,
        entry,
        owned: Lent::Path(path),
    }
}

pub fn renameat(old: (i32, CString), new: (i32, CString), flags: u32) -> Prepared {
    let entry = opcode::RenameAt::new(Fd(old.0), old.1.as_ptr(), Fd(new.0), new.1.as_ptr())
        .flags(flags)
        .build();
    Prepared {
        op: &RENAMEAT,
        entry,
        owned: Lent::Other(Box::new((old.1, new.1))),
    }
}

pub fn mkdirat(dir_fd: i32, path: CString, mode: u32) -> Prepared {
    let entry = opcode::MkDirAt::new(Fd(dir_fd), path.as_ptr())
        .mode(mode)
        .build();
    Prepared {
        op: &MKDIRAT,
        entry,
        owned: Lent::Path(path),
    }
}

pub fn symlinkat(target: CString, dir_fd: i32, link_path: CString) -> Prepared {
    let entry = opcode::SymlinkAt::new(Fd(dir_fd), target.as_ptr(), link_path.as_ptr()).build();
    Prepared {
        op: &SYMLINKAT,
        entry,
        owned: Lent::Other(Box::new((target, link_path))),
    }
}

pub fn linkat(old: (i32, CString), new: (i32, CString), flags: i32) -> Prepared {
    let entry = opcode::LinkAt::new(Fd(old.0), old.1.as_ptr(), Fd(new.0), new.1.as_ptr())
        .flags(flags)
        .build();
    Prepared {
        op: &LINKAT,
        entry,
        owned: Lent::Other(Box::new((old.1, new.1))),
    }
}
