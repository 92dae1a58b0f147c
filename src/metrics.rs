//! Prometheus metrics, at `/metrics` for the addresses in
//! `QQLOGIN_METRICS_ALLOW` only (the connecting peer's own address: a
//! forwarded header proves nothing). Counters and histograms are kept where
//! things happen, at the cost of an atomic add; gauges (pools, sessions, the
//! hashing line) are read when scraped.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::qq::QqError;

/// Seconds: QQ answers in tens of milliseconds, and is cut off at 10 s.
const QQ_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Seconds a request waits for a database connection: none, usually.
const WAIT_BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    qq_seconds: HistogramVec,
    qq_errors: IntCounterVec,
    sms_sends: IntCounterVec,
    db_wait: Histogram,
    gauges: IntGaugeVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    /// Names, help texts and labels are constants here: they are valid, or
    /// the first test that scrapes `/metrics` fails.
    #[expect(
        clippy::expect_used,
        reason = "constant metric definitions; a bad one is a programming error"
    )]
    fn new() -> Self {
        let registry =
            Registry::new_custom(Some("qqlogin".to_owned()), None).expect("a constant prefix"); // ok: a constant, checked at start
        let events = IntCounterVec::new(
            Opts::new(
                "sign_in_events_total",
                "Logins (by method and outcome), binds and account changes.",
            ),
            &["kind", "method", "outcome"],
        )
        .expect("a constant metric"); // ok: a constant, checked at start
        let qq_seconds = HistogramVec::new(
            HistogramOpts::new("qq_call_seconds", "Time QQ took to answer, by call.")
                .buckets(QQ_BUCKETS.to_vec()),
            &["call"],
        )
        .expect("a constant metric"); // ok: a constant, checked at start
        let qq_errors = IntCounterVec::new(
            Opts::new(
                "qq_errors_total",
                "Failed calls to QQ, by call and QQ's error code (or the kind of failure).",
            ),
            &["call", "code"],
        )
        .expect("a constant metric"); // ok: a constant, checked at start
        let sms_sends = IntCounterVec::new(
            Opts::new(
                "sms_sends_total",
                "SMS codes asked for, by sender and outcome.",
            ),
            &["sender", "outcome"],
        )
        .expect("a constant metric"); // ok: a constant, checked at start
        let db_wait = Histogram::with_opts(
            HistogramOpts::new(
                "db_wait_seconds",
                "Time a query waited for a pooled database connection.",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )
        .expect("a constant metric"); // ok: a constant, checked at start
        let gauges = IntGaugeVec::new(
            Opts::new(
                "in_use",
                "What is in use now: database connections (busy, idle), live sessions, passwords waiting to be hashed.",
            ),
            &["of"],
        )
        .expect("a constant metric"); // ok: a constant, checked at start
        for metric in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(qq_seconds.clone()),
            Box::new(qq_errors.clone()),
            Box::new(sms_sends.clone()),
            Box::new(db_wait.clone()),
            Box::new(gauges.clone()),
        ] {
            registry.register(metric).expect("each metric once"); // ok: checked at start
        }
        Self {
            registry,
            events,
            qq_seconds,
            qq_errors,
            sms_sends,
            db_wait,
            gauges,
        }
    }
}

/// Builds the registry now, at start: its definitions are constants, and a
/// bad one must stop the start, never a request.
pub fn init() {
    LazyLock::force(&METRICS);
}

/// A sign-in event happened (`crate::events`).
pub fn event(kind: &str, method: Option<&str>, outcome: &str) {
    METRICS
        .events
        .with_label_values(&[kind, method.unwrap_or("-"), outcome])
        .inc();
}

/// A call to QQ (`token`, `me`, `user_info`) began at `started` and ended in `result`.
pub fn qq_call<T>(call: &str, started: Instant, result: &Result<T, QqError>) {
    METRICS
        .qq_seconds
        .with_label_values(&[call])
        .observe(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        let code = match e {
            QqError::Api { code, .. } => code.to_string(),
            QqError::Timeout => "timeout".to_owned(),
            QqError::Unreachable { .. } => "unreachable".to_owned(),
            QqError::Status(status) => format!("http_{status}"),
            QqError::Malformed(_) | QqError::TooLarge => "malformed".to_owned(),
            QqError::WrongClient => "wrong_client".to_owned(),
            QqError::InvalidCode => "invalid_code".to_owned(),
            QqError::Build { .. } => "build".to_owned(),
        };
        METRICS.qq_errors.with_label_values(&[call, &code]).inc();
    }
}

/// An SMS code was asked of `sender`, with `outcome` (`sent`, `too_soon`, …).
pub fn sms_send(sender: &str, outcome: &str) {
    METRICS
        .sms_sends
        .with_label_values(&[sender, outcome])
        .inc();
}

/// A query waited `seconds` for its pooled connection.
pub fn db_wait(seconds: f64) {
    METRICS.db_wait.observe(seconds);
}

/// What is in use at the moment of a scrape.
pub struct InUse {
    pub db_busy: u32,
    pub db_idle: u32,
    pub sessions: i64,
    pub hashes_in_line: usize,
}

/// Everything, in Prometheus's text format.
pub fn render(now: InUse) -> String {
    let gauges = &METRICS.gauges;
    gauges
        .with_label_values(&["db_connections_busy"])
        .set(now.db_busy.into());
    gauges
        .with_label_values(&["db_connections_idle"])
        .set(now.db_idle.into());
    gauges.with_label_values(&["sessions"]).set(now.sessions);
    gauges
        .with_label_values(&["password_hashes_in_line"])
        .set(i64::try_from(now.hashes_in_line).unwrap_or(i64::MAX));
    let mut text = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&METRICS.registry.gather(), &mut text) {
        log::error!("metrics could not be written: {e}");
    }
    String::from_utf8(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_defined_and_rendered() {
        init();
        event("login", Some("qq"), "ok");
        let text = render(InUse {
            db_busy: 1,
            db_idle: 2,
            sessions: 3,
            hashes_in_line: 0,
        });
        for name in [
            "qqlogin_sign_in_events_total",
            "qqlogin_in_use",
            "qqlogin_db_wait_seconds",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }
}
