//! The native reference for the Century Ring benchmarks.
//!
//! It runs the same io_uring work as the Python contenders in `benches/run.py`, with no
//! interpreter in the way, and prints one JSON line: operations per second and CPU time per
//! operation (user + system time from `getrusage`, divided by the operations).
//!
//! ```text
//! century-ring-native-bench nop   --batch N --seconds S
//! century-ring-native-bench read  --file F --qd N [--size 4096] --seconds S [--direct] [--mode batch|refill]
//! century-ring-native-bench pread --file F [--size 4096] --seconds S [--direct]
//! century-ring-native-bench echo-client --port P [--connections 64] [--size 64] --seconds S
//! century-ring-native-bench echo-server [--port 0] [--connections 64] [--size 64]
//! ```
//!
//! `read --mode batch` queues `qd` reads, submits them and waits for all of them, then starts
//! over (what the page-cached Python contender does); `--mode refill` (the default) keeps `qd`
//! reads in flight and queues a new one as each completes (the O_DIRECT contender). Offsets are
//! random multiples of `--size` inside the file; buffers are allocated once, 4096-aligned, and
//! reused.
//!
//! `echo-client` is the load generator of the echo benchmark: it opens `--connections` TCP
//! connections to 127.0.0.1:`--port` and keeps exactly one `--size`-byte message in flight on
//! each (the next one is sent when the whole echo has come back), all on one ring, for
//! `--seconds`; then it shuts the connections down and prints the round trips per second.
//! Messages may be up to 1 MiB (`ECHO_MAX_SIZE`): a send the kernel cuts short is followed by
//! one for the rest, and an echo larger than the connection's receive buffer (4 KiB, or the
//! message's size up to 256 KiB) arrives in several receives. Its
//! own code costs next to nothing, but the kernel's loopback TCP work for the messages it sends
//! and receives costs it about as much CPU per message as the fastest server spends, so on two
//! cores it sets the pace of the fastest servers (see benches/README.md).
//!
//! `echo-server` is the native reference among the echo servers: the design of
//! `benches/echo_ring.py` with no interpreter. It speaks `benches/echo.py server`'s protocol: it
//! prints `PORT n` once it listens on 127.0.0.1 (`--port 0`, the default, lets the kernel pick),
//! accepts `--connections` connections with one multishot accept, then gives each connection one
//! multishot receive on a provided buffer ring and sends every chunk back from the buffer it
//! arrived in, returning the buffer to the ring when the send completes. Once every connection
//! has been closed by its peer it prints one JSON line with the bytes echoed and the CPU time
//! spent from the moment all connections were up. Messages larger than 4 KiB arrive in several
//! buffers of up to 64 KiB each, and the server holds more buffers per connection for them.

use std::alloc::{self, Layout};
use std::ffi::CString;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io;
use std::mem::ManuallyDrop;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::opcode::AsyncCancel;
use io_uring::{opcode, types, IoUring};

const USAGE: &str = "usage: century-ring-native-bench nop --batch N --seconds S
       century-ring-native-bench read --file F --qd N [--size 4096] --seconds S [--direct] [--mode batch|refill]
       century-ring-native-bench pread --file F [--size 4096] --seconds S [--direct]
       century-ring-native-bench echo-client --port P [--connections 64] [--size 64] --seconds S
       century-ring-native-bench echo-server [--port 0] [--connections 64] [--size 64]";

/// Command-line options shared by every workload.
struct Options {
    workload: String,
    batch: u32,
    qd: u32,
    size: u32,
    seconds: f64,
    file: Option<String>,
    direct: bool,
    refill: bool,
    port: u16,
    connections: u32,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let workload = args.first().ok_or(USAGE)?.clone();
    let echo = matches!(workload.as_str(), "echo-client" | "echo-server");
    if !echo && !matches!(workload.as_str(), "nop" | "read" | "pread") {
        return Err(format!("unknown workload {workload:?}\n{USAGE}"));
    }
    let mut opts = Options {
        workload,
        batch: 32,
        qd: 1,
        size: 4096,
        seconds: 1.0,
        file: None,
        direct: false,
        refill: true,
        port: 0,
        connections: 64,
    };
    if echo {
        opts.size = 64;
    }
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        if flag == "--direct" {
            opts.direct = true;
            continue;
        }
        let value = rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag} wants a positive integer, not {value:?}"))
        };
        match flag.as_str() {
            "--batch" => opts.batch = number()?,
            "--qd" => opts.qd = number()?,
            "--size" => opts.size = number()?,
            "--seconds" => {
                opts.seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && s.is_finite())
                    .ok_or_else(|| format!("--seconds wants a positive number, not {value:?}"))?
            }
            "--file" => opts.file = Some(value.clone()),
            "--port" => {
                opts.port = value
                    .parse::<u16>()
                    .ok()
                    .ok_or_else(|| format!("--port wants a TCP port, not {value:?}"))?
            }
            "--connections" => opts.connections = number()?,
            "--mode" => {
                opts.refill = match value.as_str() {
                    "refill" => true,
                    "batch" => false,
                    _ => return Err(format!("--mode is batch or refill, not {value:?}")),
                }
            }
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    if echo {
        if opts.workload == "echo-client" && opts.port == 0 {
            return Err(format!("echo-client needs a --port other than 0\n{USAGE}"));
        }
        if opts.size > ECHO_MAX_SIZE {
            return Err(format!(
                "{} takes a --size of at most {ECHO_MAX_SIZE}",
                opts.workload
            ));
        }
        if opts.workload == "echo-server"
            && echo_server_buffers(opts.connections, opts.size) > ECHO_MAX_BUFFERS
        {
            return Err(format!(
                "echo-server needs more than {ECHO_MAX_BUFFERS} buffers for {} connections of \
                 {}-byte messages",
                opts.connections, opts.size
            ));
        }
    } else if opts.workload != "nop" && opts.file.is_none() {
        return Err(format!("{} needs --file", opts.workload));
    }
    if opts.direct && opts.size % 4096 != 0 {
        return Err("--direct needs a --size that is a multiple of 4096".into());
    }
    Ok(opts)
}

/// User plus system CPU time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A ring set up as Century Ring sets up its own (SUBMIT_ALL, COOP_TASKRUN, TASKRUN_FLAG,
/// SINGLE_ISSUER), falling back to a plain ring on kernels that refuse those hints.
fn make_ring(entries: u32) -> io::Result<IoUring> {
    let entries = entries.next_power_of_two().max(8);
    let result = IoUring::builder()
        .setup_submit_all()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer()
        .build(entries);
    match result {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => IoUring::new(entries),
        other => other,
    }
}

/// `qd` buffers of `size` bytes in one 4096-aligned allocation, freed on drop.
struct Buffers {
    ptr: *mut u8,
    layout: Layout,
    size: usize,
}

impl Buffers {
    fn new(count: u32, size: u32) -> Buffers {
        let size = size as usize;
        let layout = Layout::from_size_align(size * count as usize, 4096).expect("buffer layout");
        // SAFETY: the layout has a non-zero size (count and size are positive).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            alloc::handle_alloc_error(layout);
        }
        Buffers { ptr, layout, size }
    }

    fn get(&self, index: u32) -> *mut u8 {
        debug_assert!((index as usize + 1) * self.size <= self.layout.size());
        // SAFETY: the index is within the allocation (checked by the callers' loop bounds).
        unsafe { self.ptr.add(index as usize * self.size) }
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; every read into it has completed.
        unsafe { alloc::dealloc(self.ptr, self.layout) }
    }
}

/// xorshift64*: cheap random block numbers, so the generator costs next to nothing.
struct Rng(u64);

impl Rng {
    fn next_block(&mut self, blocks: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % blocks
    }
}

/// An open file, closed on drop.
struct File {
    fd: i32,
    blocks: u64,
}

impl File {
    fn open(path: &str, direct: bool, size: u32) -> Result<File, String> {
        let c_path = CString::new(path).map_err(|_| format!("{path:?} contains a NUL byte"))?;
        let mut flags = libc::O_RDONLY | libc::O_CLOEXEC;
        if direct {
            flags |= libc::O_DIRECT;
        }
        // SAFETY: c_path is a valid NUL-terminated string.
        let fd = unsafe { libc::open(c_path.as_ptr(), flags) };
        if fd < 0 {
            return Err(format!("open {path}: {}", io::Error::last_os_error()));
        }
        // SAFETY: lseek on an fd we own.
        let len = unsafe { libc::lseek(fd, 0, libc::SEEK_END) };
        let blocks = if len > 0 { len as u64 / size as u64 } else { 0 };
        let file = File { fd, blocks };
        if blocks == 0 {
            return Err(format!("{path} is smaller than one {size}-byte block"));
        }
        Ok(file)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: closing an fd we own, once.
        unsafe { libc::close(self.fd) };
    }
}

/// What a run measured.
struct Outcome {
    ops: u64,
    seconds: f64,
    cpu_seconds: f64,
}

fn run_nop(opts: &Options) -> Result<Outcome, String> {
    let batch = opts.batch;
    let mut ring = make_ring(batch).map_err(|e| format!("io_uring setup: {e}"))?;
    let limit = Duration::from_secs_f64(opts.seconds);
    let mut ops = 0u64;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    loop {
        {
            let mut sq = ring.submission();
            for i in 0..batch {
                let entry = opcode::Nop::new().build().user_data(u64::from(i));
                // SAFETY: a no-op points at no memory.
                unsafe { sq.push(&entry) }.map_err(|_| "submission queue full".to_string())?;
            }
        }
        ring.submit_and_wait(batch as usize)
            .map_err(|e| format!("submit_and_wait: {e}"))?;
        for cqe in ring.completion() {
            if black_box(cqe.result()) < 0 {
                return Err(format!("nop failed: {}", cqe.result()));
            }
            black_box(cqe.user_data());
            ops += 1;
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Outcome {
        ops,
        seconds,
        cpu_seconds: cpu_seconds() - cpu0,
    })
}

fn read_entry(
    file: &File,
    buffers: &Buffers,
    index: u32,
    rng: &mut Rng,
) -> io_uring::squeue::Entry {
    let size = buffers.size as u64;
    let offset = rng.next_block(file.blocks) * size;
    opcode::Read::new(types::Fd(file.fd), buffers.get(index), size as u32)
        .offset(offset)
        .build()
        .user_data(u64::from(index))
}

fn check_read(result: i32, size: usize) -> Result<(), String> {
    if result < 0 {
        Err(format!(
            "read failed: {}",
            io::Error::from_raw_os_error(-result)
        ))
    } else if result as usize != size {
        Err(format!("short read: {result} of {size} bytes"))
    } else {
        Ok(())
    }
}

fn run_read(opts: &Options) -> Result<Outcome, String> {
    let file = File::open(
        opts.file.as_deref().unwrap_or_default(),
        opts.direct,
        opts.size,
    )?;
    let qd = opts.qd;
    // Dropped by hand once every read has completed; an error with reads still in flight leaks
    // the buffers rather than free memory the kernel may still write.
    let buffers = ManuallyDrop::new(Buffers::new(qd, opts.size));
    let mut ring = make_ring(qd).map_err(|e| format!("io_uring setup: {e}"))?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let limit = Duration::from_secs_f64(opts.seconds);
    let mut ops = 0u64;
    let mut in_flight = 0u32;
    let mut free: Vec<u32> = (0..qd).collect();
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut outcome = None;
    loop {
        {
            let mut sq = ring.submission();
            for index in free.drain(..) {
                let entry = read_entry(&file, &buffers, index, &mut rng);
                // SAFETY: the buffer lives in `buffers`, which outlives every read: we reap all
                // of them (the drain below) before it is dropped.
                unsafe { sq.push(&entry) }.map_err(|_| "submission queue full".to_string())?;
                in_flight += 1;
            }
        }
        let want = if opts.refill { 1 } else { in_flight as usize };
        ring.submit_and_wait(want)
            .map_err(|e| format!("submit_and_wait: {e}"))?;
        for cqe in ring.completion() {
            in_flight -= 1;
            check_read(cqe.result(), buffers.size)?;
            free.push(cqe.user_data() as u32);
            ops += 1;
        }
        if !opts.refill {
            // Batch mode waits for every read of the batch before starting the next one.
            while in_flight > 0 {
                ring.submit_and_wait(in_flight as usize)
                    .map_err(|e| format!("submit_and_wait: {e}"))?;
                for cqe in ring.completion() {
                    in_flight -= 1;
                    check_read(cqe.result(), buffers.size)?;
                    free.push(cqe.user_data() as u32);
                    ops += 1;
                }
            }
        }
        if start.elapsed() >= limit {
            outcome = outcome.or(Some(Outcome {
                ops,
                seconds: start.elapsed().as_secs_f64(),
                cpu_seconds: cpu_seconds() - cpu0,
            }));
            free.clear();
            if in_flight == 0 {
                break;
            }
        }
    }
    drop(ManuallyDrop::into_inner(buffers));
    outcome.ok_or_else(|| "no measurement".to_string())
}

fn run_pread(opts: &Options) -> Result<Outcome, String> {
    let file = File::open(
        opts.file.as_deref().unwrap_or_default(),
        opts.direct,
        opts.size,
    )?;
    let buffers = Buffers::new(1, opts.size);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let limit = Duration::from_secs_f64(opts.seconds);
    let size = buffers.size;
    let mut ops = 0u64;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    loop {
        for _ in 0..16 {
            let offset = (rng.next_block(file.blocks) * size as u64) as libc::off_t;
            // SAFETY: the buffer holds `size` bytes and lives across the call.
            let n = unsafe { libc::pread(file.fd, buffers.get(0).cast(), size, offset) };
            if n < 0 {
                return Err(format!("pread: {}", io::Error::last_os_error()));
            }
            check_read(n as i32, size)?;
            ops += 1;
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    Ok(Outcome {
        ops,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds() - cpu0,
    })
}

/// Receive buffer per echo connection for messages up to this size (it holds a whole echo);
/// the echo server's buffers are never smaller either.
const ECHO_BUFFER: usize = 4096;
/// The largest receive buffer of a client connection: a larger echo takes several receives.
const ECHO_MAX_RECV: usize = 256 << 10;
/// The largest `--size` the echo client and server take.
const ECHO_MAX_SIZE: u32 = 1 << 20;
/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19; older kernels ignore it): arm the poll before
/// trying to receive.
const IORING_RECVSEND_POLL_FIRST: u16 = 1;
/// Tag bit of a send's user_data (the low bits are the connection's index).
const SEND_TAG: u64 = 1 << 32;

/// One echo connection: its socket, its receive buffer, how much of the current message has
/// been sent and how much of its echo has come back.
struct EchoConnection {
    stream: std::net::TcpStream,
    buffer: Box<[u8]>,
    sent: usize,
    received: usize,
}

fn run_echo_client(opts: &Options) -> Result<(Outcome, String), String> {
    use std::net::{Shutdown, TcpStream};
    use std::os::fd::AsRawFd;

    let size = opts.size as usize;
    let message = vec![b'm'; size];
    let recv_size = size.clamp(ECHO_BUFFER, ECHO_MAX_RECV);
    let mut conns = Vec::with_capacity(opts.connections as usize);
    for _ in 0..opts.connections {
        let stream = TcpStream::connect(("127.0.0.1", opts.port))
            .map_err(|e| format!("connect to 127.0.0.1:{}: {e}", opts.port))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        conns.push(EchoConnection {
            stream,
            buffer: vec![0; recv_size].into_boxed_slice(),
            sent: 0,
            received: 0,
        });
    }
    // Two entries per connection can be queued at once (a send and a receive).
    let mut ring = make_ring(2 * opts.connections).map_err(|e| format!("io_uring setup: {e}"))?;
    // The rest of the current message: all of it, or what a short send left.
    let send = |conn: &EchoConnection, index: usize| {
        let rest = &message[conn.sent..];
        opcode::Send::new(
            types::Fd(conn.stream.as_raw_fd()),
            rest.as_ptr(),
            rest.len() as u32,
        )
        .build()
        .user_data(SEND_TAG | index as u64)
    };
    let recv = |conn: &mut EchoConnection, index: usize| {
        opcode::Recv::new(
            types::Fd(conn.stream.as_raw_fd()),
            conn.buffer.as_mut_ptr(),
            conn.buffer.len() as u32,
        )
        // The echo never arrives before the receive is queued, so skip the attempt that
        // would find the socket empty and go straight to waiting for data.
        .ioprio(IORING_RECVSEND_POLL_FIRST)
        .build()
        .user_data(index as u64)
    };
    let mut queue: Vec<io_uring::squeue::Entry> = Vec::new();
    for (index, conn) in conns.iter_mut().enumerate() {
        queue.push(recv(conn, index));
        queue.push(send(conn, index));
    }
    let limit = Duration::from_secs_f64(opts.seconds);
    let mut round_trips = 0u64;
    let mut in_flight = 0usize;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut failure = None;
    while start.elapsed() < limit && failure.is_none() {
        {
            let mut sq = ring.submission();
            for entry in queue.drain(..) {
                // SAFETY: sends point into `message` and receives into each connection's boxed
                // buffer; both live until every operation has completed (the drain below).
                unsafe { sq.push(&entry) }.map_err(|_| "submission queue full".to_string())?;
                in_flight += 1;
            }
        }
        ring.submit_and_wait(1)
            .map_err(|e| format!("submit_and_wait: {e}"))?;
        for cqe in ring.completion() {
            in_flight -= 1;
            let index = (cqe.user_data() & 0xffff_ffff) as usize;
            let result = cqe.result();
            let conn = &mut conns[index];
            if cqe.user_data() & SEND_TAG != 0 {
                if result <= 0 {
                    failure = Some(format!(
                        "send returned {result} with {} of {size} bytes left",
                        size - conn.sent
                    ));
                    continue;
                }
                conn.sent += result as usize;
                if conn.sent < size {
                    queue.push(send(conn, index)); // a short send: send the rest
                    continue;
                }
            } else {
                if result <= 0 {
                    failure = Some(if result == 0 {
                        "the server closed a connection early".to_string()
                    } else {
                        format!("recv: {}", io::Error::from_raw_os_error(-result))
                    });
                    continue;
                }
                conn.received += result as usize;
                queue.push(recv(conn, index));
            }
            // The message is done when all of it has been sent and all of its echo is back
            // (whichever completion comes last); only then does the next one start.
            if conn.sent == size && conn.received >= size {
                conn.received -= size;
                conn.sent = 0;
                round_trips += 1;
                queue.push(send(conn, index));
            }
        }
    }
    let outcome = Outcome {
        ops: round_trips,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds() - cpu0,
    };
    // Shutting the sockets down completes the receives still armed (with 0); wait for every
    // operation before the buffers and the message are freed.
    for conn in &conns {
        let _ = conn.stream.shutdown(Shutdown::Both);
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    while in_flight > 0 {
        if Instant::now() > give_up {
            // Never free memory the kernel may still write: leak it and exit.
            std::mem::forget(conns);
            std::mem::forget(message);
            return Err("operations still in flight 10 s after shutdown".into());
        }
        ring.submit_and_wait(1)
            .map_err(|e| format!("submit_and_wait: {e}"))?;
        in_flight -= ring.completion().count();
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    let client_share = outcome.cpu_seconds / outcome.seconds;
    let line = format!(
        "{{\"contender\": \"native\", \"workload\": \"echo-client\", \"connections\": {}, \
         \"size\": {size}, \"round_trips\": {}, \"seconds\": {:.6}, \"msgs_per_sec\": {:.1}, \
         \"client_cpu_seconds\": {:.6}, \"client_cpu_share\": {:.3}}}",
        opts.connections,
        outcome.ops,
        outcome.seconds,
        outcome.ops as f64 / outcome.seconds,
        outcome.cpu_seconds,
        client_share,
    );
    Ok((outcome, line))
}

/// Most buffers `echo-server` may need (see `echo_server_buffers`): a provided buffer ring
/// holds at most 32768 entries.
const ECHO_MAX_BUFFERS: usize = 32768;
/// The largest buffer of the echo server: a larger message arrives in several of them.
const ECHO_SERVER_MAX_BUFFER: u32 = 64 << 10;

/// The size of each of the echo server's buffers for `size`-byte messages.
fn echo_server_buffer_size(size: u32) -> u32 {
    size.clamp(ECHO_BUFFER as u32, ECHO_SERVER_MAX_BUFFER)
}

/// The echo server's buffer count: the power of two above twice the connections (at least 8),
/// as benches/echo_ring.py has, times the buffers one message fills. Each connection holds at
/// most one message's buffers between their receives and the end of their echoes' sends; the
/// rest leaves room for a burst and for receives of less than a buffer.
fn echo_server_buffers(connections: u32, size: u32) -> usize {
    let per_message = size.div_ceil(echo_server_buffer_size(size)) as usize;
    ((2 * connections as usize + 1) * per_message)
        .next_power_of_two()
        .max(8)
}
/// The provided buffer group the echo server's receives take from.
const ECHO_GROUP: u16 = 1;

/// What an echo server's operation is, in the top two bits of its user_data; bits 16..48 hold
/// the connection's index and bits 0..16 a buffer id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Recv = 0,
    Send = 1,
    Accept = 2,
    Cancel = 3,
}

fn tag(kind: Kind, conn: usize, bid: u16) -> u64 {
    (kind as u64) << 62 | (conn as u64 & 0xffff_ffff) << 16 | u64::from(bid)
}

fn untag(user_data: u64) -> (Kind, usize, u16) {
    let kind = match user_data >> 62 {
        0 => Kind::Recv,
        1 => Kind::Send,
        2 => Kind::Accept,
        _ => Kind::Cancel,
    };
    (kind, (user_data >> 16) as u32 as usize, user_data as u16)
}

/// One entry of a provided buffer ring, laid out as the kernel's `struct io_uring_buf`. The
/// `resv` field of entry 0 is the ring's tail.
#[repr(C)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<BufEntry>() == 16);

/// The echo server's provided buffers: `count` buffers of `size` bytes and the ring of `count`
/// entries through which the kernel takes them (`IORING_REGISTER_PBUF_RING`, Linux 5.19). A
/// multishot receive takes a buffer when data arrives; the server gives it back once the
/// echo's send has completed.
///
/// Dropping it frees the memory, so it may only be dropped once its group is unregistered (or
/// was never registered); `run_echo_server` leaks it on its error paths instead.
struct BufferRing {
    /// `count` entries in their own anonymous mapping, page-aligned as the kernel requires.
    entries: *mut BufEntry,
    entries_bytes: usize,
    buffers: Buffers,
    count: u16,
    /// The tail as written so far; `publish` makes it visible to the kernel.
    tail: u16,
}

impl BufferRing {
    /// Every buffer starts in the ring.
    fn new(count: u16, size: u32) -> io::Result<BufferRing> {
        assert!(count.is_power_of_two());
        let entries_bytes = usize::from(count) * std::mem::size_of::<BufEntry>();
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing: it
        // touches no existing memory.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                entries_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = BufferRing {
            entries: raw.cast(),
            entries_bytes,
            buffers: Buffers::new(u32::from(count), size),
            count,
            tail: 0,
        };
        for bid in 0..count {
            ring.give(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Registers the ring as provided buffer group `group` of `ring`.
    fn register(&self, ring: &IoUring, group: u16) -> io::Result<()> {
        // SAFETY: the entries and the buffers they point to stay allocated until the group is
        // unregistered: `run_echo_server` unregisters it before dropping this ring, and leaks
        // the ring when it returns early.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(self.entries as u64, self.count, group, 0)
        }
    }

    fn buffer(&self, bid: u16) -> *mut u8 {
        assert!(bid < self.count, "buffer id {bid} out of range");
        self.buffers.get(u32::from(bid))
    }

    /// Writes buffer `bid` into the next entry; the kernel sees it after `publish`.
    fn give(&mut self, bid: u16) {
        let addr = self.buffer(bid) as u64;
        let index = usize::from(self.tail & (self.count - 1));
        // SAFETY: `index` < `count`, so the entry lies inside the mapping. The kernel reads only
        // the entries from its head up to the published tail. Each buffer is either in the ring
        // or held here, once, and `bid` is held here (or the ring is not registered yet), so
        // fewer than `count` entries are published and unread: the slot at our tail is not one
        // of them, and nothing reads it while it is written. The writes go through raw pointers
        // to the three fields and leave `resv` (entry 0's is the tail) alone.
        unsafe {
            let entry = self.entries.add(index);
            std::ptr::addr_of_mut!((*entry).addr).write(addr);
            std::ptr::addr_of_mut!((*entry).len).write(self.buffers.size as u32);
            std::ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every entry given so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: entry 0's `resv` is 2-byte aligned and inside the mapping, which outlives
        // this reference; after mmap zeroed it, it is only ever accessed atomically (the kernel
        // reads it with an acquire load).
        let tail = unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*self.entries).resv)) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`, once; the group is unregistered (see
        // the type's note), so the kernel no longer reads it.
        unsafe { libc::munmap(self.entries.cast(), self.entries_bytes) };
    }
}

/// Pushes every queued entry, submitting whenever the submission queue is full.
///
/// # Safety
///
/// Every memory region the entries point to must stay valid until their completions are
/// reaped.
unsafe fn push_all(ring: &mut IoUring, queue: &mut Vec<io_uring::squeue::Entry>) -> io::Result<()> {
    for entry in queue.drain(..) {
        loop {
            // SAFETY: the caller keeps the entry's memory valid until its completion.
            if unsafe { ring.submission().push(&entry) }.is_ok() {
                break;
            }
            ring.submit()?;
        }
    }
    Ok(())
}

fn echo_send(
    stream: &std::net::TcpStream,
    ptr: *const u8,
    len: u32,
    user_data: u64,
) -> io_uring::squeue::Entry {
    use std::os::fd::AsRawFd;
    opcode::Send::new(types::Fd(stream.as_raw_fd()), ptr, len)
        .build()
        .user_data(user_data)
}

fn echo_recv(stream: &std::net::TcpStream, index: usize) -> io_uring::squeue::Entry {
    use std::os::fd::AsRawFd;
    opcode::RecvMulti::new(types::Fd(stream.as_raw_fd()), ECHO_GROUP)
        .build()
        .user_data(tag(Kind::Recv, index, 0))
}

/// Accepts `count` connections on `listener` with one multishot accept (armed again if it
/// stops early), then cancels it and waits for its last completion.
fn accept_connections(
    ring: &mut IoUring,
    listener: &std::net::TcpListener,
    count: usize,
) -> Result<Vec<std::net::TcpStream>, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(tag(Kind::Accept, 0, 0));
    let mut queue = vec![accept.clone()];
    let mut conns = Vec::with_capacity(count);
    let (mut armed, mut cancelled, mut cancel_done) = (true, false, true);
    let mut failure = None;
    while armed || !cancel_done {
        // SAFETY: an accept with no address and a cancel point at no memory.
        unsafe { push_all(ring, &mut queue) }.map_err(|e| format!("submit: {e}"))?;
        ring.submit_and_wait(1)
            .map_err(|e| format!("submit_and_wait: {e}"))?;
        for cqe in ring.completion() {
            let result = cqe.result();
            if untag(cqe.user_data()).0 == Kind::Cancel {
                cancel_done = true;
                continue;
            }
            if result >= 0 {
                // SAFETY: a successful accept returns a new descriptor that nothing else owns.
                let stream = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) });
                if conns.len() < count {
                    stream
                        .set_nodelay(true)
                        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
                    conns.push(stream);
                } // else a connection too many: dropping it closes it
            } else if result != -libc::ECANCELED {
                failure = Some(format!("accept: {}", io::Error::from_raw_os_error(-result)));
            }
            if !io_uring::cqueue::more(cqe.flags()) {
                armed = false;
            }
        }
        if failure.is_some() {
            if !cancelled && armed {
                queue.push(
                    AsyncCancel::new(tag(Kind::Accept, 0, 0))
                        .build()
                        .user_data(tag(Kind::Cancel, 0, 0)),
                );
                (cancelled, cancel_done) = (true, false);
            }
            continue;
        }
        if conns.len() < count && !armed {
            queue.push(accept.clone());
            armed = true;
        } else if conns.len() == count && armed && !cancelled {
            queue.push(
                AsyncCancel::new(tag(Kind::Accept, 0, 0))
                    .build()
                    .user_data(tag(Kind::Cancel, 0, 0)),
            );
            (cancelled, cancel_done) = (true, false);
        }
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(conns),
    }
}

fn run_echo_server(opts: &Options) -> Result<String, String> {
    use std::net::TcpListener;

    let count = opts.connections as usize;
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
        .map_err(|e| format!("listen on 127.0.0.1:{}: {e}", opts.port))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("getsockname: {e}"))?
        .port();
    // Rust's stdout is line-buffered: the line reaches run.py now.
    println!("PORT {port}");
    // The sizes benches/echo_ring.py uses for messages of up to 4 KiB: ring entries and buffers
    // both the power of two above twice the connections (at least 8); more for larger messages.
    let buffer_count = echo_server_buffers(opts.connections, opts.size);
    let mut ring = make_ring(buffer_count as u32).map_err(|e| format!("io_uring setup: {e}"))?;
    let conns = accept_connections(&mut ring, &listener, count)?;
    drop(listener);

    let buffer_size = echo_server_buffer_size(opts.size);
    let mut buffers = ManuallyDrop::new(
        BufferRing::new(buffer_count as u16, buffer_size)
            .map_err(|e| format!("buffer ring: {e}"))?,
    );
    if let Err(err) = buffers.register(&ring, ECHO_GROUP) {
        // SAFETY: never registered, so the kernel holds no pointer into it.
        unsafe { ManuallyDrop::drop(&mut buffers) };
        return Err(format!("IORING_REGISTER_PBUF_RING: {err}"));
    }
    // From here on an early return leaks `buffers`: receives may still be armed on it.

    let cpu0 = cpu_seconds();
    let mut queue: Vec<io_uring::squeue::Entry> =
        (0..count).map(|i| echo_recv(&conns[i], i)).collect();
    // The send in flight from each buffer: (bytes sent so far, bytes to send).
    let mut sending = vec![(0u32, 0u32); buffer_count];
    let (mut recvs, mut sends) = (count, 0usize);
    let mut echoed = 0u64;
    while recvs > 0 || sends > 0 {
        // SAFETY: sends point into `buffers`, which is leaked unless every operation has
        // completed; receives and their buffers are the buffer ring's, registered until then.
        unsafe { push_all(&mut ring, &mut queue) }.map_err(|e| format!("submit: {e}"))?;
        ring.submit_and_wait(1)
            .map_err(|e| format!("submit_and_wait: {e}"))?;
        for cqe in ring.completion() {
            let (kind, index, bid) = untag(cqe.user_data());
            let (result, flags) = (cqe.result(), cqe.flags());
            if kind == Kind::Recv {
                if let Some(bid) = io_uring::cqueue::buffer_select(flags) {
                    // Data: send it back from the buffer it arrived in.
                    let len = result as u32;
                    sending[usize::from(bid)] = (0, len);
                    queue.push(echo_send(
                        &conns[index],
                        buffers.buffer(bid),
                        len,
                        tag(Kind::Send, index, bid),
                    ));
                    sends += 1;
                }
                if !io_uring::cqueue::more(flags) {
                    if result > 0 || result == -libc::ENOBUFS {
                        // The kernel stopped the receive early: arm it again.
                        queue.push(echo_recv(&conns[index], index));
                    } else {
                        recvs -= 1; // 0: the peer closed; < 0: an error on this connection
                    }
                }
                continue;
            }
            if kind != Kind::Send {
                continue; // none: the accept and its cancel completed before the receives began
            }
            sends -= 1;
            let (done, len) = sending[usize::from(bid)];
            if result < 0 {
                buffers.give(bid); // the peer went away; its receive reports the close
                continue;
            }
            echoed += result as u64;
            let done = done + result as u32;
            if done < len {
                // A short send: send the rest, keep the buffer.
                sending[usize::from(bid)] = (done, len);
                // SAFETY: `done` < `len` <= the buffer's size.
                let rest = unsafe { buffers.buffer(bid).add(done as usize) };
                queue.push(echo_send(
                    &conns[index],
                    rest,
                    len - done,
                    tag(Kind::Send, index, bid),
                ));
                sends += 1;
            } else {
                buffers.give(bid);
            }
        }
        buffers.publish();
    }
    drop(conns);
    let cpu = cpu_seconds() - cpu0;
    // Every receive and send has completed: unregister the group, then free its memory.
    if let Err(err) = ring.submitter().unregister_buf_ring(ECHO_GROUP) {
        return Err(format!("IORING_UNREGISTER_PBUF_RING: {err}"));
    }
    // SAFETY: unregistered, and no operation is in flight: the kernel holds no pointer into it.
    unsafe { ManuallyDrop::drop(&mut buffers) };
    let messages = echoed / u64::from(opts.size);
    Ok(format!(
        "{{\"contender\": \"native\", \"workload\": \"echo-server\", \"server\": \"native\", \
         \"connections\": {count}, \"size\": {}, \"echoed_bytes\": {echoed}, \
         \"messages\": {messages}, \"cpu_seconds\": {cpu:.6}, \"cpu_us_per_msg\": {:.4}}}",
        opts.size,
        cpu * 1e6 / messages.max(1) as f64,
    ))
}

fn json_line(opts: &Options, outcome: &Outcome) -> String {
    let ops = outcome.ops.max(1) as f64;
    let mut line = format!(
        "{{\"contender\": \"native\", \"workload\": \"{}\"",
        opts.workload
    );
    match opts.workload.as_str() {
        "nop" => write!(line, ", \"batch\": {}", opts.batch),
        "read" => write!(
            line,
            ", \"qd\": {}, \"size\": {}, \"direct\": {}, \"mode\": \"{}\"",
            opts.qd,
            opts.size,
            opts.direct,
            if opts.refill { "refill" } else { "batch" }
        ),
        _ => write!(
            line,
            ", \"qd\": 1, \"size\": {}, \"direct\": {}",
            opts.size, opts.direct
        ),
    }
    .expect("write to a String");
    write!(
        line,
        ", \"ops\": {}, \"seconds\": {:.6}, \"ops_per_sec\": {:.1}, \"cpu_seconds\": {:.6}, \
         \"cpu_us_per_op\": {:.4}}}",
        outcome.ops,
        outcome.seconds,
        outcome.ops as f64 / outcome.seconds,
        outcome.cpu_seconds,
        outcome.cpu_seconds * 1e6 / ops
    )
    .expect("write to a String");
    line
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(|opts| {
        if opts.workload == "echo-client" {
            return run_echo_client(&opts).map(|(_, line)| line);
        }
        if opts.workload == "echo-server" {
            return run_echo_server(&opts);
        }
        let outcome = match opts.workload.as_str() {
            "nop" => run_nop(&opts),
            "read" => run_read(&opts),
            _ => run_pread(&opts),
        }?;
        Ok(json_line(&opts, &outcome))
    });
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("century-ring-native-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
