//! The measurements: RS256 verification loops timed from the client, sequential latency, and
//! fixed-concurrency throughput, each with the workerd CPU time it cost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::Instant;

use serde_json::Value;

use crate::client::{Answer, Connection, Prepared};
use crate::cpu::Group;

/// Percentiles of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Nearest-rank percentiles of `samples` (sorted in place).
pub fn summarize(samples: &mut [f64]) -> Summary {
    samples.sort_by(f64::total_cmp);
    let count = samples.len();
    let rank = |p: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within a sample of at most millions"
        )]
        let index = ((p * count as f64).ceil() as usize).saturating_sub(1);
        samples.get(index).copied().unwrap_or(f64::NAN)
    };
    #[expect(clippy::cast_precision_loss, reason = "sample sizes far below 2^52")]
    let mean = samples.iter().sum::<f64>() / count.max(1) as f64;
    Summary {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        mean,
    }
}

/// The median of `samples` (sorted in place); NaN when empty.
pub fn median(samples: &mut [f64]) -> f64 {
    summarize(samples).p50
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn cpu_ns(group: Option<Group>) -> Option<u64> {
    group.and_then(Group::workerd_cpu_ns)
}

fn cpu_delta_ns(before: Option<u64>, after: Option<u64>) -> Option<f64> {
    #[expect(clippy::cast_precision_loss, reason = "nanoseconds of a benchmark run")]
    match (before, after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before) as f64),
        _ => None,
    }
}

fn expect_ok(label: &str, answer: &Answer) -> Result<(), String> {
    if answer.status == 200 {
        Ok(())
    } else {
        let body = String::from_utf8_lossy(&answer.body);
        let excerpt: String = body.chars().take(300).collect();
        Err(format!("{label}: HTTP {} ({excerpt})", answer.status))
    }
}

/// One way of verifying the token, served at `path` by the Worker at `addr`.
#[derive(Debug, Clone)]
pub struct Variant {
    pub label: &'static str,
    pub addr: SocketAddr,
    pub path: &'static str,
    pub group: Option<Group>,
}

/// A verification variant's cost.
#[derive(Debug, Clone)]
pub struct VerifyResult {
    pub label: &'static str,
    /// Median over rounds of (round trip at n = N − round trip at n = 0) / N, in µs.
    pub per_verify_us: f64,
    /// The lowest and highest per-round values, in µs.
    pub range_us: (f64, f64),
    /// Median over rounds of (workerd CPU at n = N − at n = 0) / N, in µs.
    pub cpu_per_verify_us: Option<f64>,
    /// Median of the Worker's own `performance.now()` delta around the loop / N, in µs.
    pub perf_per_verify_us: f64,
    /// Median of the Worker's own `Date.now()` delta around the loop / N, in µs.
    pub date_per_verify_us: f64,
    /// Whether every `performance.now()` delta was a whole number of milliseconds.
    pub whole_ms: bool,
}

struct Sample {
    ms: f64,
    cpu_ns: Option<f64>,
    perf_ms: f64,
    date_ms: f64,
}

fn verify_once(connection: &mut Connection, variant: &Variant, n: u32) -> Result<Sample, String> {
    let request = Prepared::get(variant.addr, &format!("{}?n={n}", variant.path), &[]);
    let cpu_before = cpu_ns(variant.group);
    let start = Instant::now();
    let answer = connection
        .send(&request)
        .map_err(|e| format!("{}: {e}", variant.label))?;
    let ms = ms_since(start);
    let cpu_after = cpu_ns(variant.group);
    expect_ok(variant.label, &answer)?;
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{}: answer is not JSON: {e}", variant.label))?;
    let valid = body.get("valid").and_then(Value::as_u64);
    if valid != Some(u64::from(n)) {
        return Err(format!(
            "{}: {valid:?} of {n} signatures verified: {body}",
            variant.label
        ));
    }
    let number = |name: &str| body.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN);
    Ok(Sample {
        ms,
        cpu_ns: cpu_delta_ns(cpu_before, cpu_after),
        perf_ms: number("perf_ms"),
        date_ms: number("date_ms"),
    })
}

/// Times every variant in `rounds` interleaved rounds of (n = 0, n = `n`) after `warmup`
/// requests at n = `n` each (so the Wasm and JS are tiered up).
pub fn verification(
    variants: &[Variant],
    n: u32,
    rounds: usize,
    warmup: usize,
) -> Result<Vec<VerifyResult>, String> {
    let mut connections: Vec<Connection> = variants
        .iter()
        .map(|variant| Connection::new(variant.addr))
        .collect();
    for _ in 0..warmup {
        for (variant, connection) in variants.iter().zip(&mut connections) {
            verify_once(connection, variant, n)?;
        }
    }
    let per = f64::from(n.max(1));
    let mut results = Vec::new();
    let mut samples: Vec<Vec<(Sample, Sample)>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for ((variant, connection), kept) in variants.iter().zip(&mut connections).zip(&mut samples)
        {
            // Alternate which comes first, so a drift in load favours neither.
            let (zero, full) = if round % 2 == 0 {
                let zero = verify_once(connection, variant, 0)?;
                (zero, verify_once(connection, variant, n)?)
            } else {
                let full = verify_once(connection, variant, n)?;
                (verify_once(connection, variant, 0)?, full)
            };
            kept.push((zero, full));
        }
    }
    for (variant, kept) in variants.iter().zip(samples) {
        let mut per_verify: Vec<f64> = kept
            .iter()
            .map(|(zero, full)| (full.ms - zero.ms) / per * 1e3)
            .collect();
        let mut cpu: Vec<f64> = kept
            .iter()
            .filter_map(|(zero, full)| Some((full.cpu_ns? - zero.cpu_ns?) / per / 1e3))
            .collect();
        let mut perf: Vec<f64> = kept
            .iter()
            .map(|(_, full)| full.perf_ms / per * 1e3)
            .collect();
        let mut date: Vec<f64> = kept
            .iter()
            .map(|(_, full)| full.date_ms / per * 1e3)
            .collect();
        let whole_ms = kept
            .iter()
            .all(|(zero, full)| zero.perf_ms.fract() == 0.0 && full.perf_ms.fract() == 0.0);
        let low = per_verify.iter().copied().fold(f64::INFINITY, f64::min);
        let high = per_verify.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        results.push(VerifyResult {
            label: variant.label,
            per_verify_us: median(&mut per_verify),
            range_us: (low, high),
            cpu_per_verify_us: (cpu.len() == kept.len() && !cpu.is_empty())
                .then(|| median(&mut cpu)),
            perf_per_verify_us: median(&mut perf),
            date_per_verify_us: median(&mut date),
            whole_ms,
        });
    }
    Ok(results)
}

/// A Worker (or the origin itself) and the request sent to it.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: &'static str,
    pub request: Prepared,
    pub group: Option<Group>,
}

/// Latency or throughput of one target, with its workerd CPU per request.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub label: &'static str,
    pub latency: Summary,
    pub requests: usize,
    pub seconds: f64,
    pub cpu_per_request_us: Option<f64>,
}

impl RunResult {
    pub fn requests_per_second(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "request counts far below 2^52")]
        let requests = self.requests as f64;
        requests / self.seconds
    }
}

/// `count` requests per target on one keep-alive connection each, the targets interleaved
/// request by request (A B C A B C …) after `warmup` rounds.
pub fn sequential(
    targets: &[Target],
    warmup: usize,
    count: usize,
) -> Result<Vec<RunResult>, String> {
    let mut connections: Vec<Connection> = targets
        .iter()
        .map(|target| Connection::new(target.request.addr))
        .collect();
    for _ in 0..warmup {
        for (target, connection) in targets.iter().zip(&mut connections) {
            let answer = connection
                .send(&target.request)
                .map_err(|e| format!("{}: {e}", target.label))?;
            expect_ok(target.label, &answer)?;
        }
    }
    let cpu_before: Vec<Option<u64>> = targets.iter().map(|t| cpu_ns(t.group)).collect();
    let mut samples: Vec<Vec<f64>> = targets.iter().map(|_| Vec::with_capacity(count)).collect();
    let mut busy = vec![0.0_f64; targets.len()];
    for _ in 0..count {
        for (((target, connection), kept), busy) in targets
            .iter()
            .zip(&mut connections)
            .zip(&mut samples)
            .zip(&mut busy)
        {
            let start = Instant::now();
            let answer = connection
                .send(&target.request)
                .map_err(|e| format!("{}: {e}", target.label))?;
            let ms = ms_since(start);
            expect_ok(target.label, &answer)?;
            kept.push(ms);
            *busy += ms / 1e3;
        }
    }
    let mut results = Vec::new();
    for (((target, mut kept), before), seconds) in
        targets.iter().zip(samples).zip(cpu_before).zip(busy)
    {
        #[expect(clippy::cast_precision_loss, reason = "request counts far below 2^52")]
        let cpu = cpu_delta_ns(before, cpu_ns(target.group)).map(|ns| ns / count as f64 / 1e3);
        results.push(RunResult {
            label: target.label,
            latency: summarize(&mut kept),
            requests: count,
            seconds,
            cpu_per_request_us: cpu,
        });
    }
    Ok(results)
}

/// For each round and each target in turn: `per_round` requests from `concurrency`
/// connections as fast as they answer. Requests per second over all rounds of a target.
pub fn load(
    targets: &[Target],
    concurrency: usize,
    per_round: usize,
    rounds: usize,
) -> Result<Vec<RunResult>, String> {
    let mut totals: Vec<(Vec<f64>, f64, Option<f64>)> = targets
        .iter()
        .map(|_| (Vec::new(), 0.0, Some(0.0)))
        .collect();
    for _ in 0..rounds {
        for (target, total) in targets.iter().zip(&mut totals) {
            let cpu_before = cpu_ns(target.group);
            let (latencies, seconds) = burst(target, concurrency, per_round)?;
            let cpu = cpu_delta_ns(cpu_before, cpu_ns(target.group));
            total.0.extend(latencies);
            total.1 += seconds;
            total.2 = match (total.2, cpu) {
                (Some(sum), Some(cpu)) => Some(sum + cpu),
                _ => None,
            };
        }
    }
    Ok(targets
        .iter()
        .zip(totals)
        .map(|(target, (mut latencies, seconds, cpu))| {
            let requests = latencies.len();
            #[expect(clippy::cast_precision_loss, reason = "request counts far below 2^52")]
            let cpu = cpu.map(|ns| ns / requests.max(1) as f64 / 1e3);
            RunResult {
                label: target.label,
                latency: summarize(&mut latencies),
                requests,
                seconds,
                cpu_per_request_us: cpu,
            }
        })
        .collect())
}

/// `count` requests to `target` from `concurrency` threads; their latencies and the wall
/// time from the common start to the last answer.
fn burst(target: &Target, concurrency: usize, count: usize) -> Result<(Vec<f64>, f64), String> {
    let remaining = AtomicUsize::new(count);
    let start_line = Barrier::new(concurrency + 1);
    let latencies = Mutex::new(Vec::with_capacity(count));
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let seconds = std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                let mut connection = Connection::new(target.request.addr);
                let mut mine = Vec::with_capacity(count / concurrency + 1);
                // Connect before the start line, so the burst times requests, not handshakes.
                let warm = connection
                    .send(&target.request)
                    .map_err(|e| format!("{}: {e}", target.label))
                    .and_then(|answer| expect_ok(target.label, &answer));
                start_line.wait();
                if let Err(error) = warm {
                    remaining.store(0, Ordering::SeqCst);
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                }
                while remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                        left.checked_sub(1)
                    })
                    .is_ok()
                {
                    let started = Instant::now();
                    let answer = connection
                        .send(&target.request)
                        .map_err(|e| format!("{}: {e}", target.label))
                        .and_then(|answer| expect_ok(target.label, &answer));
                    if let Err(error) = answer {
                        remaining.store(0, Ordering::SeqCst);
                        *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                        break;
                    }
                    mine.push(ms_since(started));
                }
                latencies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(mine);
            });
        }
        start_line.wait();
        let started = Instant::now();
        // The scope joins every thread before returning; time until then.
        started
    });
    let seconds = seconds.elapsed().as_secs_f64();
    if let Some(error) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(error);
    }
    Ok((
        latencies
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
        seconds,
    ))
}
