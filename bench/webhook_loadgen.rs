//! Fixed-rate (open-loop) load for bench/webhooks.sh: what `wrk2 -R` would do, which Debian does not
//! package. Standard library only, so `rustc -O` builds it in seconds, outside the workspace.
//!
//!   rustc -O -o /tmp/webhook_loadgen bench/webhook_loadgen.rs
//!   /tmp/webhook_loadgen --addr 127.0.0.1:8080 --bodies DIR/bodies.tsv --rate 5000 --duration 15
//!
//! Each of `--connections` keep-alive connections (one thread each) sends on its own fixed schedule
//! (rate / connections per second, staggered), whatever the previous response took. Latency is
//! measured from the **intended** send time, as wrk2 does: a stalled server (or a late generator)
//! shows up in the percentiles instead of silently lowering the rate (no coordinated omission).
//! The first `--warmup` seconds are sent but not counted. Every request carries a unique
//! `X-Shopify-Webhook-Id` and `X-Shopify-Event-Id`; bodies and HMACs come from
//! bench/gen_webhook_bodies.py (`bodies.tsv`: `hmac<TAB>body` per line).
//!
//! Prints a human summary and one `LOADGEN_RESULT key=value ...` line. Exits 3 when the achieved
//! rate is under 97 % of the target: the figure would then not be a measurement at that rate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Config {
    addr: SocketAddr,
    path: String,
    bodies: Vec<(String, Vec<u8>)>,
    topic: String,
    rate: f64,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    nonce: String,
    timeout: Duration,
}

#[derive(Default)]
struct Outcome {
    /// Latency from the intended send time, µs (counted requests only).
    corrected_us: Vec<u64>,
    /// Latency from the actual send time, µs.
    service_us: Vec<u64>,
    /// How late the generator sent after the intended time, µs.
    send_lag_us: Vec<u64>,
    statuses: Vec<(u16, u64)>,
    errors: u64,
    timeouts: u64,
    counted_sent: u64,
    /// 2xx answers, warm-up included (what the server acknowledged).
    all_2xx: u64,
    /// When the last counted response arrived.
    last_done: Option<Instant>,
}

fn usage() -> ! {
    eprintln!(
        "usage: webhook_loadgen --addr HOST:PORT --bodies FILE.tsv [--path /webhooks] [--topic T] \
         [--rate 5000] [--duration 15] [--warmup 2] [--connections 64] [--nonce HEX12] [--timeout 5]"
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let mut path = "/webhooks".to_owned();
    let mut bodies_path = None;
    let mut topic = "orders/create".to_owned();
    let mut rate = 5000.0;
    let mut duration = 15.0;
    let mut warmup = 2.0;
    let mut connections = 64;
    let mut nonce = None;
    let mut timeout = 5.0;
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().unwrap_or_else(|_| usage())),
            "--path" => path = value,
            "--bodies" => bodies_path = Some(value),
            "--topic" => topic = value,
            "--rate" => rate = value.parse().unwrap_or_else(|_| usage()),
            "--duration" => duration = value.parse().unwrap_or_else(|_| usage()),
            "--warmup" => warmup = value.parse().unwrap_or_else(|_| usage()),
            "--connections" => connections = value.parse().unwrap_or_else(|_| usage()),
            "--nonce" => nonce = Some(value),
            "--timeout" => timeout = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let bodies_path = bodies_path.unwrap_or_else(|| usage());
    let text = std::fs::read(&bodies_path).unwrap_or_else(|err| {
        eprintln!("reading {bodies_path}: {err}");
        std::process::exit(2)
    });
    let bodies: Vec<(String, Vec<u8>)> = text
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let tab = line.iter().position(|&b| b == b'\t').expect("hmac<TAB>body");
            (
                String::from_utf8(line[..tab].to_vec()).expect("ascii hmac"),
                line[tab + 1..].to_vec(),
            )
        })
        .collect();
    assert!(!bodies.is_empty(), "no bodies in {bodies_path}");
    let nonce = nonce.unwrap_or_else(|| {
        let mut raw = [0u8; 6];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .expect("/dev/urandom");
        raw.iter().map(|b| format!("{b:02x}")).collect()
    });
    assert!(nonce.len() >= 12, "--nonce needs 12 hex digits");
    assert!(rate > 0.0 && connections > 0 && duration > 0.0);
    Config {
        addr: addr.unwrap_or_else(|| usage()),
        path,
        bodies,
        topic,
        rate,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        connections,
        nonce,
        timeout: Duration::from_secs_f64(timeout),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` for now (UTC), without a date library.
fn utc_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn connect(cfg: &Config) -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
    let stream = TcpStream::connect_timeout(&cfg.addr, cfg.timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(cfg.timeout))?;
    stream.set_write_timeout(Some(cfg.timeout))?;
    let reader = BufReader::with_capacity(16 * 1024, stream.try_clone()?);
    Ok((stream, reader))
}

/// Reads one HTTP/1.1 response; returns its status and whether the connection stays open.
fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(u16, bool)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = true;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("headers cut short"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().map_err(|_| bad("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
        }
    }
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
    } else if status >= 200 && status != 204 && status != 304 {
        return Err(bad("response without length"));
    }
    Ok((status, keep_alive))
}

fn run_connection(cfg: Arc<Config>, conn: usize, start: Instant) -> Outcome {
    let mut out = Outcome::default();
    let interval = Duration::from_secs_f64(cfg.connections as f64 / cfg.rate);
    let offset = interval.mul_f64(conn as f64 / cfg.connections as f64);
    let end = start + cfg.warmup + cfg.duration;
    let counted_from = start + cfg.warmup;
    let mut link: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
    let mut stamp_at = Instant::now() - Duration::from_secs(2);
    let mut stamp = String::new();
    let (n1, n2) = (&cfg.nonce[..8], &cfg.nonce[8..12]);
    let mut request = Vec::with_capacity(8 * 1024);
    for k in 0u64.. {
        let intended = start + offset + interval.mul_f64(k as f64);
        if intended >= end {
            break;
        }
        let now = Instant::now();
        if intended > now {
            std::thread::sleep(intended - now);
        }
        if stamp_at.elapsed() >= Duration::from_millis(500) {
            stamp = utc_stamp();
            stamp_at = Instant::now();
        }
        let (hmac, body) = &cfg.bodies[(conn * 17 + k as usize) % cfg.bodies.len()];
        request.clear();
        write!(
            request,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {len}\r\nX-Shopify-Topic: {topic}\r\nX-Shopify-Hmac-Sha256: {hmac}\r\n\
             X-Shopify-Shop-Domain: bench.myshopify.com\r\nX-Shopify-API-Version: 2026-10\r\n\
             X-Shopify-Webhook-Id: {n1}-{n2}-{conn:04x}-f000-{k:012x}\r\n\
             X-Shopify-Event-Id: {n1}-{n2}-{conn:04x}-fe00-{k:012x}\r\n\
             X-Shopify-Triggered-At: {stamp}\r\n\r\n",
            path = cfg.path,
            addr = cfg.addr,
            len = body.len(),
            topic = cfg.topic,
        )
        .unwrap();
        request.extend_from_slice(body);
        let counted = intended >= counted_from;
        if counted {
            out.counted_sent += 1;
        }
        if link.is_none() {
            match connect(&cfg) {
                Ok(pair) => link = Some(pair),
                Err(_) => {
                    out.errors += u64::from(counted);
                    continue;
                }
            }
        }
        let (stream, reader) = link.as_mut().unwrap();
        let sent = Instant::now();
        let result = stream
            .write_all(&request)
            .and_then(|()| read_response(reader));
        let done = Instant::now();
        match result {
            Ok((status, keep_alive)) => {
                if (200..300).contains(&status) {
                    out.all_2xx += 1;
                }
                if counted {
                    out.last_done = Some(done);
                    *statuses.entry(status).or_default() += 1;
                    out.corrected_us.push((done - intended).as_micros() as u64);
                    out.service_us.push((done - sent).as_micros() as u64);
                    out.send_lag_us.push((sent - intended).as_micros() as u64);
                }
                if !keep_alive {
                    link = None;
                }
            }
            Err(err) => {
                if counted {
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        out.timeouts += 1;
                    } else {
                        out.errors += 1;
                    }
                }
                link = None;
            }
        }
    }
    out.statuses = statuses.into_iter().collect();
    out
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let cfg = Arc::new(parse_args());
    let start = Instant::now() + Duration::from_millis(100);
    let workers: Vec<_> = (0..cfg.connections)
        .map(|conn| {
            let cfg = Arc::clone(&cfg);
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || run_connection(cfg, conn, start))
                .expect("spawning a connection thread")
        })
        .collect();
    let mut all = Outcome::default();
    let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
    for worker in workers {
        let out = worker.join().expect("connection thread panicked");
        all.corrected_us.extend(out.corrected_us);
        all.service_us.extend(out.service_us);
        all.send_lag_us.extend(out.send_lag_us);
        all.errors += out.errors;
        all.timeouts += out.timeouts;
        all.counted_sent += out.counted_sent;
        all.all_2xx += out.all_2xx;
        all.last_done = all.last_done.max(out.last_done);
        for (status, n) in out.statuses {
            *statuses.entry(status).or_default() += n;
        }
    }
    all.corrected_us.sort_unstable();
    all.service_us.sort_unstable();
    all.send_lag_us.sort_unstable();
    let completed = all.corrected_us.len() as u64;
    let window = cfg.duration.as_secs_f64();
    // Responses per second of wall time, from the end of the warm-up to the last counted response:
    // a server that falls behind stretches the run and lowers this below the target.
    let elapsed = all
        .last_done
        .map(|last| last.saturating_duration_since(start + cfg.warmup).as_secs_f64())
        .unwrap_or(window)
        .max(window);
    let achieved = completed as f64 / elapsed;
    let non2xx: u64 = statuses
        .iter()
        .filter(|(status, _)| !(200..300).contains(*status))
        .map(|(_, n)| n)
        .sum();
    let status_text: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    let status_text = if status_text.is_empty() {
        "none".to_owned()
    } else {
        status_text.join(",")
    };
    let reached = achieved >= 0.97 * cfg.rate;
    println!(
        "fixed rate {:.0} req/s over {} connections for {:.0} s (+{:.0} s warm-up): {} responses, \
         achieved {:.1} req/s{}",
        cfg.rate,
        cfg.connections,
        window,
        cfg.warmup.as_secs_f64(),
        completed,
        achieved,
        if reached { "" } else { "  ** RATE NOT REACHED **" }
    );
    println!(
        "  latency from intended send: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        percentile(&all.corrected_us, 50.0),
        percentile(&all.corrected_us, 90.0),
        percentile(&all.corrected_us, 99.0),
        percentile(&all.corrected_us, 99.9),
        percentile(&all.corrected_us, 100.0)
    );
    println!(
        "  service time (from actual send): p99 {:.2} ms; generator send lag p99 {:.2} ms; \
         statuses {status_text}; errors {}; timeouts {}",
        percentile(&all.service_us, 99.0),
        percentile(&all.send_lag_us, 99.0),
        all.errors,
        all.timeouts
    );
    println!(
        "LOADGEN_RESULT target_rps={:.0} achieved_rps={:.1} responses={} sent={} non2xx={} errors={} \
         timeouts={} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p99_9_ms={:.3} max_ms={:.3} \
         service_p99_ms={:.3} send_lag_p99_ms={:.3} statuses={} rate_reached={} total_2xx={}",
        cfg.rate,
        achieved,
        completed,
        all.counted_sent,
        non2xx,
        all.errors,
        all.timeouts,
        percentile(&all.corrected_us, 50.0),
        percentile(&all.corrected_us, 90.0),
        percentile(&all.corrected_us, 99.0),
        percentile(&all.corrected_us, 99.9),
        percentile(&all.corrected_us, 100.0),
        percentile(&all.service_us, 99.0),
        percentile(&all.send_lag_us, 99.0),
        status_text,
        u8::from(reached),
        all.all_2xx
    );
    if !reached {
        std::process::exit(3);
    }
}
