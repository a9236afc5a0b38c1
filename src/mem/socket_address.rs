//! Socket addresses: the form the kernel reads, made from every form Python gives them (`str`,
//! `ipaddress.IPv4Address` and `ipaddress.IPv6Address` for the `connect_v4`/`_v6` forms, and every
//! form the `socket` module uses: `(host, port)`, `(host, port, flowinfo, scope_id)`, AF_UNIX
//! paths), and the addresses the kernel writes turned back into those forms.

use std::net::{Ipv4Addr, Ipv6Addr};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::base::args::{int_in, type_name};
use crate::base::errors::bad_arg;
use crate::base::objects;

/// A socket address in the form the kernel reads.
pub enum SocketAddress {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
    /// An AF_UNIX address and its length: `sun_family` plus the bytes of the path that count
    /// (a filesystem path without its terminating NUL, or an abstract name with its leading
    /// NUL).
    Unix(libc::sockaddr_un, libc::socklen_t),
}

impl SocketAddress {
    pub fn as_ptr_and_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            SocketAddress::V4(addr) => (
                (addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            SocketAddress::V6(addr) => (
                (addr as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
            SocketAddress::Unix(addr, len) => ((addr as *const libc::sockaddr_un).cast(), *len),
        }
    }
}

pub fn ipv4(address: &Bound<'_, PyAny>, port: u16) -> PyResult<Box<SocketAddress>> {
    let ip = if let Ok(text) = address.cast::<PyString>() {
        let text = text.to_str()?;
        text.parse::<Ipv4Addr>()
            .map_err(|_| bad_arg(format!("address {text:?} is not a valid IPv4 address")))?
    } else {
        let packed = packed(address, "ipaddress.IPv4Address")?;
        let octets: [u8; 4] = packed.as_slice().try_into().map_err(|_| {
            bad_arg(format!(
                "address {} is not an IPv4 address",
                address.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        Ipv4Addr::from(octets)
    };
    Ok(Box::new(SocketAddress::V4(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    })))
}

pub fn ipv6(address: &Bound<'_, PyAny>, port: u16) -> PyResult<Box<SocketAddress>> {
    let (ip, scope) = ipv6_and_scope(address)?;
    Ok(Box::new(sockaddr_in6(ip, port, 0, scope)))
}

fn sockaddr_in6(ip: Ipv6Addr, port: u16, flowinfo: u32, scope_id: u32) -> SocketAddress {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    addr.sin6_port = port.to_be();
    addr.sin6_flowinfo = flowinfo.to_be();
    addr.sin6_addr.s6_addr = ip.octets();
    addr.sin6_scope_id = scope_id;
    SocketAddress::V6(addr)
}

/// An IPv6 address with its zone (0 for none) from a `str` (with an optional `%zone`) or an
/// `ipaddress.IPv6Address`.
fn ipv6_and_scope(address: &Bound<'_, PyAny>) -> PyResult<(Ipv6Addr, u32)> {
    Ok(if let Ok(text) = address.cast::<PyString>() {
        let text = text.to_str()?;
        let (ip, scope) = match text.split_once('%') {
            Some((ip, scope)) => (ip, Some(scope)),
            None => (text, None),
        };
        let ip = ip
            .parse::<Ipv6Addr>()
            .map_err(|_| bad_arg(format!("address {text:?} is not a valid IPv6 address")))?;
        (ip, scope.map(scope_id).transpose()?.unwrap_or(0))
    } else {
        let packed = packed(address, "ipaddress.IPv6Address")?;
        let octets: [u8; 16] = packed.as_slice().try_into().map_err(|_| {
            bad_arg(format!(
                "address {} is not an IPv6 address",
                address.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let scope = match address.getattr("scope_id") {
            Ok(scope) if !scope.is_none() => scope_id(&scope.extract::<String>()?)?,
            _ => 0,
        };
        (Ipv6Addr::from(octets), scope)
    })
}

/// `addr.packed` of an `ipaddress` object; anything else is a `TypeError`.
fn packed(address: &Bound<'_, PyAny>, expected: &str) -> PyResult<Vec<u8>> {
    let not_an_address = || {
        PyTypeError::new_err(format!(
            "address must be a str or an {expected}, not {}",
            type_name(address)
        ))
    };
    let packed = address.getattr("packed").map_err(|_| not_an_address())?;
    let bytes = packed.cast::<PyBytes>().map_err(|_| not_an_address())?;
    Ok(bytes.as_bytes().to_vec())
}

/// An IPv6 zone: a numeric index or an interface name.
fn scope_id(scope: &str) -> PyResult<u32> {
    if let Ok(index) = scope.parse::<u32>() {
        return Ok(index);
    }
    let name = std::ffi::CString::new(scope)
        .map_err(|_| bad_arg("address scope must not contain NUL bytes".to_owned()))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(bad_arg(format!(
            "address scope {scope:?} is not a network interface on this machine"
        )));
    }
    Ok(index)
}

/// Any socket address in the form Python's `socket` module takes, named `name` in errors:
///
/// - `(host, port)`: `host` a numeric IPv4 address (`""` is `0.0.0.0`) or IPv6 address, as a
///   `str` or an `ipaddress` object;
/// - `(host, port, flowinfo[, scope_id])`: IPv6 (`""` is `::`);
/// - a `str`, `bytes` or `os.PathLike`: an AF_UNIX path; `bytes` (or `str`) starting with a NUL
///   is a name in Linux's abstract namespace.
///
/// Host names are refused: resolving them would block, so the caller resolves them first.
pub fn from_python(address: &Bound<'_, PyAny>, name: &str) -> PyResult<Box<SocketAddress>> {
    if let Ok(tuple) = address.cast::<PyTuple>() {
        return inet(tuple, name);
    }
    let is_path = address.is_instance_of::<PyString>()
        || address.is_instance_of::<PyBytes>()
        || address.hasattr(pyo3::intern!(address.py(), "__fspath__"))?;
    if !is_path {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a (host, port) or (host, port, flowinfo, scope_id) tuple, or an \
             AF_UNIX path (str, bytes or os.PathLike), not {}",
            type_name(address)
        )));
    }
    unix(&fs_bytes(address, name)?, name)
}

/// `os.fsencode(os.fspath(obj))`, keeping NUL bytes (abstract names contain them).
fn fs_bytes(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u8>> {
    let py = obj.py();
    let os = py.import(pyo3::intern!(py, "os"))?;
    let encoded = os
        .call_method1(pyo3::intern!(py, "fsencode"), (obj,))
        .map_err(|err| {
            let wrapped = PyTypeError::new_err(format!(
                "{name} must be str, bytes or os.PathLike for an AF_UNIX address, not {}",
                type_name(obj)
            ));
            wrapped.set_cause(py, Some(err));
            wrapped
        })?;
    Ok(encoded.cast::<PyBytes>()?.as_bytes().to_vec())
}

fn unix(path: &[u8], name: &str) -> PyResult<Box<SocketAddress>> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let room = addr.sun_path.len();
    let abstract_name = path.first() == Some(&0);
    if abstract_name {
        if path.len() > room {
            return Err(bad_arg(format!(
                "{name}: an abstract AF_UNIX name holds at most {room} bytes (with its leading \
                 NUL), got {}",
                path.len()
            )));
        }
    } else {
        if path.contains(&0) {
            return Err(bad_arg(format!(
                "{name}: an AF_UNIX path must not contain NUL bytes (only an abstract name, \
                 which starts with one, may)"
            )));
        }
        // A filesystem path needs room for its terminating NUL.
        if path.len() >= room {
            return Err(bad_arg(format!(
                "{name}: an AF_UNIX path holds at most {} bytes, got {}",
                room - 1,
                path.len()
            )));
        }
    }
    for (slot, &byte) in addr.sun_path.iter_mut().zip(path) {
        *slot = byte as libc::c_char;
    }
    let len = (std::mem::offset_of!(libc::sockaddr_un, sun_path) + path.len()) as libc::socklen_t;
    Ok(Box::new(SocketAddress::Unix(addr, len)))
}

fn inet(tuple: &Bound<'_, PyTuple>, name: &str) -> PyResult<Box<SocketAddress>> {
    let parts: Vec<Bound<'_, PyAny>> = tuple.iter().collect();
    if !(2..=4).contains(&parts.len()) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be (host, port) or (host, port, flowinfo, scope_id), got a tuple of {} \
             items",
            parts.len()
        )));
    }
    let port = int_in(&parts[1], &format!("{name} port"), 0, u16::MAX.into())? as u16;
    let flowinfo = match parts.get(2) {
        Some(value) => int_in(value, &format!("{name} flowinfo"), 0, 0xF_FFFF)? as u32,
        None => 0,
    };
    let scope_id = match parts.get(3) {
        Some(value) => Some(int_in(value, &format!("{name} scope_id"), 0, u32::MAX.into())? as u32),
        None => None,
    };
    let host = &parts[0];
    let ipv6_only = parts.len() > 2;
    if let Ok(text) = host.cast::<PyString>() {
        let text = text.to_str()?;
        if text.is_empty() {
            // The wildcard address, as the socket module reads "" for bind().
            return Ok(Box::new(if ipv6_only {
                sockaddr_in6(Ipv6Addr::UNSPECIFIED, port, flowinfo, scope_id.unwrap_or(0))
            } else {
                sockaddr_in(Ipv4Addr::UNSPECIFIED, port)
            }));
        }
        if let Ok(ip) = text.parse::<Ipv4Addr>() {
            if ipv6_only {
                return Err(bad_arg(format!(
                    "{name}: a (host, port, flowinfo, scope_id) address needs an IPv6 host, \
                     got {text:?} (use \"::ffff:{text}\" for a v4-mapped address)"
                )));
            }
            return Ok(Box::new(sockaddr_in(ip, port)));
        }
        let numeric = text.split('%').next().unwrap_or_default();
        if numeric.parse::<Ipv6Addr>().is_err() {
            let expected = if ipv6_only {
                "a numeric IPv6 address"
            } else {
                "a numeric IPv4 or IPv6 address"
            };
            return Err(bad_arg(format!(
                "{name}: host {text:?} is not {expected}; host names are not resolved here \
                 (that would block): resolve it first, for example with \
                 socket.getaddrinfo() or loop.getaddrinfo(), and pass the numeric address"
            )));
        }
    } else if host.getattr(pyo3::intern!(host.py(), "packed")).is_err() {
        return Err(PyTypeError::new_err(format!(
            "{name}: host must be a str or an ipaddress.IPv4Address/IPv6Address, not {}",
            type_name(host)
        )));
    }
    let is_v4_object = !host.is_instance_of::<PyString>()
        && host
            .getattr(pyo3::intern!(host.py(), "version"))
            .and_then(|v| v.extract::<u8>())
            .is_ok_and(|v| v == 4);
    if is_v4_object {
        if ipv6_only {
            return Err(bad_arg(format!(
                "{name}: a (host, port, flowinfo, scope_id) address needs an IPv6 host, got {}",
                host.repr().map(|r| r.to_string()).unwrap_or_default()
            )));
        }
        return ipv4(host, port);
    }
    let (ip, zone) = ipv6_and_scope(host).map_err(|err| {
        if err.is_instance_of::<PyTypeError>(host.py()) {
            err
        } else {
            bad_arg(format!("{name}: {}", err.value(host.py())))
        }
    })?;
    Ok(Box::new(sockaddr_in6(
        ip,
        port,
        flowinfo,
        scope_id.filter(|&s| s != 0).unwrap_or(zone),
    )))
}

fn sockaddr_in(ip: Ipv4Addr, port: u16) -> SocketAddress {
    SocketAddress::V4(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    })
}

/// A socket address the kernel wrote (`len` bytes of `storage`) in the form Python's `socket`
/// module returns: `(host, port)` for AF_INET, `(host, port, flowinfo, scope_id)` for
/// AF_INET6, a `str` path for AF_UNIX (`bytes` for an abstract name, which starts with NUL;
/// `""` for an unnamed socket), `(family, bytes)` for any other family. `None` when `len` is
/// 0: the kernel gave no address.
pub fn to_python(
    py: Python<'_>,
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> PyResult<Option<Py<PyAny>>> {
    let len = (len as usize).min(size_of::<libc::sockaddr_storage>());
    if len < size_of::<libc::sa_family_t>() {
        return Ok(None);
    }
    let family = i32::from(storage.ss_family);
    let raw = storage as *const libc::sockaddr_storage;
    let value = match family {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, `len` says the kernel
            // wrote all of it, and sockaddr_storage is large and aligned enough for any
            // sockaddr.
            let addr = unsafe { &*raw.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
            objects::tuple(
                py,
                [
                    objects::string(py, &ip.to_string())?.into_any(),
                    objects::int(py, u16::from_be(addr.sin_port).into())?.into_any(),
                ],
            )?
            .into_any()
            .unbind()
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as for AF_INET, with a sockaddr_in6.
            let addr = unsafe { &*raw.cast::<libc::sockaddr_in6>() };
            objects::tuple(
                py,
                [
                    objects::string(py, &ipv6_text(&addr.sin6_addr))?.into_any(),
                    objects::int(py, u16::from_be(addr.sin6_port).into())?.into_any(),
                    objects::int(py, u32::from_be(addr.sin6_flowinfo).into())?.into_any(),
                    objects::int(py, addr.sin6_scope_id.into())?.into_any(),
                ],
            )?
            .into_any()
            .unbind()
        }
        libc::AF_UNIX => {
            // SAFETY: as for AF_INET, with a sockaddr_un; only the `len` bytes the kernel
            // wrote are read below.
            let addr = unsafe { &*raw.cast::<libc::sockaddr_un>() };
            let path_len = len - std::mem::offset_of!(libc::sockaddr_un, sun_path);
            let path: Vec<u8> = addr.sun_path[..path_len.min(addr.sun_path.len())]
                .iter()
                .map(|&c| c as u8)
                .collect();
            if path.first() == Some(&0) {
                objects::bytes(py, &path)?.into_any().unbind()
            } else {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                let os = py.import(pyo3::intern!(py, "os"))?;
                os.call_method1(
                    pyo3::intern!(py, "fsdecode"),
                    objects::tuple(py, [objects::bytes(py, &path[..end])?.into_any()])?,
                )?
                .unbind()
            }
        }
        _ => {
            // SAFETY: `len` bytes of the storage were written by the kernel, and `len` was
            // capped at the storage's size above.
            let bytes = unsafe { std::slice::from_raw_parts(raw.cast::<u8>(), len) };
            let data = &bytes[size_of::<libc::sa_family_t>()..];
            objects::tuple(
                py,
                [
                    objects::int(py, family.into())?.into_any(),
                    objects::bytes(py, data)?.into_any(),
                ],
            )?
            .into_any()
            .unbind()
        }
    };
    Ok(Some(value))
}

/// An IPv6 address as glibc's `inet_ntop(3)` writes it, which is what the `socket` module
/// shows: Rust's own text (RFC 5952, `::ffff:1.2.3.4` for v4-mapped addresses), except that
/// the deprecated v4-compatible addresses also end in a dotted quad (`::1.2.3.4`), as glibc
/// writes them.
fn ipv6_text(addr: &libc::in6_addr) -> String {
    let ip = Ipv6Addr::from(addr.s6_addr);
    let words = ip.segments();
    let v4_compatible = words[..6] == [0; 6] && (words[6] != 0 || (words[7] != 0 && words[7] != 1));
    if v4_compatible {
        let [.., a, b, c, d] = addr.s6_addr;
        format!("::{}", Ipv4Addr::new(a, b, c, d))
    } else {
        ip.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in6(text: &str) -> libc::in6_addr {
        libc::in6_addr {
            s6_addr: text.parse::<Ipv6Addr>().unwrap().octets(),
        }
    }

    #[test]
    fn ipv6_text_matches_glibc_inet_ntop() {
        assert_eq!(ipv6_text(&in6("::1")), "::1");
        assert_eq!(ipv6_text(&in6("::")), "::");
        assert_eq!(ipv6_text(&in6("::ffff:127.0.0.1")), "::ffff:127.0.0.1");
        assert_eq!(ipv6_text(&in6("::1.2.3.4")), "::1.2.3.4");
        assert_eq!(ipv6_text(&in6("::2")), "::0.0.0.2");
        assert_eq!(ipv6_text(&in6("fe80::1:0:0:2")), "fe80::1:0:0:2");
        assert_eq!(ipv6_text(&in6("2001:db8:0:1:0:0:0:1")), "2001:db8:0:1::1");
    }

    #[test]
    fn unix_address_lengths() {
        let header = std::mem::offset_of!(libc::sockaddr_un, sun_path);
        let Ok(address) = unix(b"/tmp/s", "address") else {
            panic!("a short path fits")
        };
        let SocketAddress::Unix(addr, len) = *address else {
            panic!("not AF_UNIX")
        };
        assert_eq!(len as usize, header + 6, "no terminating NUL counted");
        assert_eq!(addr.sun_path[6], 0, "but it is there");
        let Ok(address) = unix(b"\0abstract", "address") else {
            panic!("an abstract name fits")
        };
        assert!(matches!(*address, SocketAddress::Unix(_, len) if len as usize == header + 9));
        assert!(unix(&[b'x'; 107], "address").is_ok());
        assert!(
            unix(&[b'x'; 108], "address").is_err(),
            "no room for the NUL"
        );
        let mut longest_abstract = vec![b'x'; 108];
        longest_abstract[0] = 0;
        assert!(unix(&longest_abstract, "address").is_ok());
        longest_abstract.push(b'x');
        assert!(unix(&longest_abstract, "address").is_err());
        assert!(
            unix(b"a\0b", "address").is_err(),
            "NUL inside a filesystem path"
        );
    }
}
