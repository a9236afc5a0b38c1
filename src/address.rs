//! Python addresses (`str`, `ipaddress.IPv4Address`, `ipaddress.IPv6Address`) to socket
//! addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::args::type_name;
use crate::errors::bad_arg;
use crate::ops::net::SocketAddress;

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
    let (ip, scope) = if let Ok(text) = address.cast::<PyString>() {
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
    };
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    addr.sin6_port = port.to_be();
    addr.sin6_addr.s6_addr = ip.octets();
    addr.sin6_scope_id = scope;
    Ok(Box::new(SocketAddress::V6(addr)))
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
