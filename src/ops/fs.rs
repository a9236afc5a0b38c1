//! Filesystem operations: unlink, rename, mkdir, symlink, link.

use std::ffi::CString;

use io_uring::opcode;
use io_uring::types::Fd;

use super::Prepared;
use crate::mem::lent::Lent;

operations! {
    /// Removes a file or (with `AT_REMOVEDIR`) an empty directory.
    UNLINKAT = "unlinkat": UnlinkAt IORING_OP_UNLINKAT since "5.11", mirrors "unlinkat(2)",
        owns ["path"];
    /// Renames a file.
    RENAMEAT = "renameat": RenameAt IORING_OP_RENAMEAT since "5.11", mirrors "renameat2(2)",
        owns ["paths"];
    /// Makes a directory.
    MKDIRAT = "mkdirat": MkDirAt IORING_OP_MKDIRAT since "5.15", mirrors "mkdirat(2)",
        owns ["path"];
    /// Makes a symbolic link.
    SYMLINKAT = "symlinkat": SymlinkAt IORING_OP_SYMLINKAT since "5.15",
        mirrors "symlinkat(2)", owns ["paths"];
    /// Makes a hard link.
    LINKAT = "linkat": LinkAt IORING_OP_LINKAT since "5.15", mirrors "linkat(2)",
        owns ["paths"];
}

pub fn unlinkat(dir_fd: i32, path: CString, flags: i32) -> Prepared {
    let entry = opcode::UnlinkAt::new(Fd(dir_fd), path.as_ptr())
        .flags(flags)
        .build();
    Prepared {
        op: &UNLINKAT,
        entry,
        lent: Lent::Path(path),
    }
}

pub fn renameat(old: (i32, CString), new: (i32, CString), flags: u32) -> Prepared {
    let entry = opcode::RenameAt::new(Fd(old.0), old.1.as_ptr(), Fd(new.0), new.1.as_ptr())
        .flags(flags)
        .build();
    Prepared {
        op: &RENAMEAT,
        entry,
        lent: Lent::Other(Box::new((old.1, new.1))),
    }
}

pub fn mkdirat(dir_fd: i32, path: CString, mode: u32) -> Prepared {
    let entry = opcode::MkDirAt::new(Fd(dir_fd), path.as_ptr())
        .mode(mode)
        .build();
    Prepared {
        op: &MKDIRAT,
        entry,
        lent: Lent::Path(path),
    }
}

pub fn symlinkat(target: CString, dir_fd: i32, link_path: CString) -> Prepared {
    let entry = opcode::SymlinkAt::new(Fd(dir_fd), target.as_ptr(), link_path.as_ptr()).build();
    Prepared {
        op: &SYMLINKAT,
        entry,
        lent: Lent::Other(Box::new((target, link_path))),
    }
}

pub fn linkat(old: (i32, CString), new: (i32, CString), flags: i32) -> Prepared {
    let entry = opcode::LinkAt::new(Fd(old.0), old.1.as_ptr(), Fd(new.0), new.1.as_ptr())
        .flags(flags)
        .build();
    Prepared {
        op: &LINKAT,
        entry,
        lent: Lent::Other(Box::new((old.1, new.1))),
    }
}
