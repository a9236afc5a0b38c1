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
//! `--seconds`; then it shuts the connections down and prints the round trips per second. It
//! costs far less CPU per message than any Python server, so the server, not the client, sets
//! the pace.

use std::alloc::{self, Layout};
use std::ffi::CString;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io;
use std::mem::ManuallyDrop;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};

const USAGE: &str = "usage: century-ring-native-bench nop --batch N --seconds S
       century-ring-native-bench read --file F --qd N [--size 4096] --seconds S [--direct] [--mode batch|refill]
       century-ring-native-bench pread --file F [--size 4096] --seconds S [--direct]
       century-ring-native-bench echo-client --port P [--connections 64] [--size 64] --seconds S";

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
    if !matches!(workload.as_str(), "nop" | "read" | "pread" | "echo-client") {
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
    if opts.workload == "echo-client" {
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
                    .filter(|&p| p > 0)
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
    if opts.workload == "echo-client" {
        if opts.port == 0 {
            return Err(format!("echo-client needs --port\n{USAGE}"));
        }
        if opts.size > ECHO_BUFFER as u32 {
            return Err(format!(
                "echo-client takes a --size of at most {ECHO_BUFFER}"
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

/// Receive buffer per echo connection: an echo of one message never exceeds it.
const ECHO_BUFFER: usize = 4096;
/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19; older kernels ignore it): arm the poll before
/// trying to receive.
const IORING_RECVSEND_POLL_FIRST: u16 = 1;
/// Tag bit of a send's user_data (the low bits are the connection's index).
const SEND_TAG: u64 = 1 << 32;

/// One echo connection: its socket, its receive buffer, and how much of the current echo has
/// come back.
struct EchoConnection {
    stream: std::net::TcpStream,
    buffer: Box<[u8; ECHO_BUFFER]>,
    received: usize,
}

fn run_echo_client(opts: &Options) -> Result<(Outcome, String), String> {
    use std::net::{Shutdown, TcpStream};
    use std::os::fd::AsRawFd;

    let size = opts.size as usize;
    let message = vec![b'm'; size];
    let mut conns = Vec::with_capacity(opts.connections as usize);
    for _ in 0..opts.connections {
        let stream = TcpStream::connect(("127.0.0.1", opts.port))
            .map_err(|e| format!("connect to 127.0.0.1:{}: {e}", opts.port))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        conns.push(EchoConnection {
            stream,
            buffer: Box::new([0; ECHO_BUFFER]),
            received: 0,
        });
    }
    // Two entries per connection can be queued at once (a send and a receive).
    let mut ring = make_ring(2 * opts.connections).map_err(|e| format!("io_uring setup: {e}"))?;
    let send = |conn: &EchoConnection, index: usize| {
        opcode::Send::new(
            types::Fd(conn.stream.as_raw_fd()),
            message.as_ptr(),
            size as u32,
        )
        .build()
        .user_data(SEND_TAG | index as u64)
    };
    let recv = |conn: &mut EchoConnection, index: usize| {
        opcode::Recv::new(
            types::Fd(conn.stream.as_raw_fd()),
            conn.buffer.as_mut_ptr(),
            ECHO_BUFFER as u32,
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
            if cqe.user_data() & SEND_TAG != 0 {
                if result != size as i32 {
                    failure = Some(format!("send returned {result}, not {size}"));
                }
                continue;
            }
            if result <= 0 {
                failure = Some(if result == 0 {
                    "the server closed a connection early".to_string()
                } else {
                    format!("recv: {}", io::Error::from_raw_os_error(-result))
                });
                continue;
            }
            let conn = &mut conns[index];
            conn.received += result as usize;
            while conn.received >= size {
                conn.received -= size;
                round_trips += 1;
                queue.push(send(conn, index));
            }
            queue.push(recv(conn, index));
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
