//! Telling valgrind's memcheck what the kernel wrote.
//!
//! The kernel fills read and receive buffers through io_uring, outside any system call valgrind
//! can see, so memcheck would take those bytes for uninitialised. When a completion says how
//! many bytes were written, `kernel_wrote` marks exactly those as defined, so that reading
//! them is not reported while reading past them still is. Outside valgrind the client-request
//! instruction sequence does nothing (four rotations that add up to 128 bits, and an exchange
//! of a register with itself).

/// `VG_USERREQ__MAKE_MEM_DEFINED` from `<valgrind/memcheck.h>`: ('M' << 24 | 'C' << 16) + 2.
#[cfg(target_arch = "x86_64")]
const MAKE_MEM_DEFINED: u64 = 0x4d43_0002;

/// Marks `len` bytes at `ptr`, which the kernel has just written, as defined for memcheck.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn kernel_wrote(ptr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let request: [u64; 6] = [MAKE_MEM_DEFINED, ptr as u64, len as u64, 0, 0, 0];
    let mut _result: u64 = 0;
    // SAFETY: valgrind's amd64 client-request sequence. On a real CPU it changes nothing: rdi
    // is rotated by 3 + 13 + 61 + 51 = 128 bits, i.e. back to its value, and rbx is exchanged
    // with itself (only the flags change, which the asm does not promise to keep). Under
    // valgrind, the request array that rax points to (alive for the whole statement) is read
    // and rdx receives the result; valgrind only updates its own shadow memory.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") request.as_ptr(),
            inout("rdx") _result,
            options(nostack),
        );
    }
}

/// Elsewhere there is no valgrind client request to make.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn kernel_wrote(_ptr: *const u8, _len: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn is_harmless_outside_valgrind() {
        let data = [1u8, 2, 3, 4];
        super::kernel_wrote(data.as_ptr(), data.len());
        super::kernel_wrote(data.as_ptr(), 0);
        assert_eq!(data, [1, 2, 3, 4]);
    }
}
