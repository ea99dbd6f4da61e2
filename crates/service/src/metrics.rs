//! Prometheus metrics: every name and label in one place, recorded through the
//! `metrics` facade and rendered by `metrics-exporter-prometheus` at `GET /metrics`.
//!
//! The recorder is process-global (the facade's design): the first [`crate::Services`]
//! installs it, later ones share it. Counters therefore add up over every `Services`
//! of a process, which is what one server has; tests compare before and after.
//! Gauges that describe shared state (queue depth, the database pool) are read when
//! scraped ([`crate::HealthService::metrics`]), so every node reports the same queue.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process. `None` when another recorder was installed
/// first (then nothing of ours is recorded, and `/metrics` says so).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// Seconds: from a cached token (well under a millisecond) to a slow registry call.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub const TOKEN_REQUESTS: &str = "portcullis_token_requests_total";
pub const TOKEN_DURATION: &str = "portcullis_token_request_duration_seconds";
pub const CREDENTIAL_CACHE: &str = "portcullis_credential_cache_lookups_total";
pub const HTTP_REQUESTS: &str = "portcullis_http_requests_total";
pub const HTTP_DURATION: &str = "portcullis_http_request_duration_seconds";
pub const NOTIFICATION_EVENTS: &str = "portcullis_notification_events_received_total";
pub const JOBS: &str = "portcullis_jobs_total";
pub const JOB_DURATION: &str = "portcullis_job_duration_seconds";
pub const QUEUE_DEPTH: &str = "portcullis_jobs_queued";
pub const SYNC_RUNS: &str = "portcullis_sync_runs_total";
pub const WEBHOOK_DELIVERIES: &str = "portcullis_webhook_delivery_attempts_total";
pub const DB_CONNECTIONS: &str = "portcullis_db_pool_connections";
pub const GRANT_INVALIDATIONS: &str = "portcullis_grant_cache_invalidations_total";
pub const SCHEDULER_LEADER: &str = "portcullis_scheduler_leader";

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        TOKEN_REQUESTS,
        "Registry token requests by result and credential kind"
    );
    describe_histogram!(
        TOKEN_DURATION,
        metrics::Unit::Seconds,
        "Time to answer a registry token request"
    );
    describe_counter!(
        CREDENTIAL_CACHE,
        "Password checks answered by the verified-credential cache (hit) or by hashing (miss)"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status class");
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route"
    );
    describe_counter!(
        NOTIFICATION_EVENTS,
        "Registry notification events received (stored or already known)"
    );
    describe_counter!(JOBS, "Background jobs run, by kind and outcome");
    describe_histogram!(
        JOB_DURATION,
        metrics::Unit::Seconds,
        "Time one background job run took, by kind"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Jobs waiting to run, by kind (read when scraped)"
    );
    describe_counter!(SYNC_RUNS, "Catalog syncs, by result");
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts, by result");
    describe_gauge!(
        DB_CONNECTIONS,
        "This process's database connections, by state"
    );
    describe_counter!(
        GRANT_INVALIDATIONS,
        "Clears of the authorization-fact cache, by origin (this node or another)"
    );
    describe_gauge!(
        SCHEDULER_LEADER,
        "1 while this worker holds the periodic scheduler's leadership, else 0"
    );
}

/// The credential a token request presented, as a label.
pub fn token_request(credential: &'static str, result: &'static str, took: Duration) {
    counter!(TOKEN_REQUESTS, "credential" => credential, "result" => result).increment(1);
    histogram!(TOKEN_DURATION, "credential" => credential).record(took.as_secs_f64());
}

pub fn credential_cache(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!(CREDENTIAL_CACHE, "result" => result).increment(1);
}

/// `route` is the router's matched path (`/api/v1/namespaces/{id}`), never the raw
/// path, so labels stay few.
pub fn http_request(route: String, method: &str, status: u16, took: Duration) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.to_owned(), "status" => class)
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(took.as_secs_f64());
}

pub fn notification_events(count: usize) {
    counter!(NOTIFICATION_EVENTS).increment(count as u64);
}

pub fn job_run(kind: &str, outcome: &'static str, took: Duration) {
    let kind = kind.to_owned();
    counter!(JOBS, "kind" => kind.clone(), "outcome" => outcome).increment(1);
    histogram!(JOB_DURATION, "kind" => kind).record(took.as_secs_f64());
}

pub fn queue_depth(kind: &str, queued: i64) {
    gauge!(QUEUE_DEPTH, "kind" => kind.to_owned()).set(queued as f64);
}

pub fn sync_run(result: &'static str) {
    counter!(SYNC_RUNS, "result" => result).increment(1);
}

pub fn webhook_attempt(result: &'static str) {
    counter!(WEBHOOK_DELIVERIES, "result" => result).increment(1);
}

pub fn db_connections(in_use: u32, idle: u32) {
    gauge!(DB_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
    gauge!(DB_CONNECTIONS, "state" => "idle").set(f64::from(idle));
}

pub fn scheduler_leader(leading: bool) {
    gauge!(SCHEDULER_LEADER).set(if leading { 1.0 } else { 0.0 });
}

pub fn grant_invalidation(origin: &'static str) {
    counter!(GRANT_INVALIDATIONS, "origin" => origin).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_render_in_prometheus_text() {
        let handle = install().expect("the first recorder of this test process");
        token_request("password", "issued", Duration::from_millis(3));
        credential_cache(true);
        http_request("/v2/token".into(), "GET", 401, Duration::from_millis(1));
        queue_depth("process_event", 7);
        let text = handle.render();
        for line in [
            "portcullis_token_requests_total{credential=\"password\",result=\"issued\"} 1",
            "portcullis_credential_cache_lookups_total{result=\"hit\"} 1",
            "portcullis_http_requests_total{route=\"/v2/token\",method=\"GET\",status=\"4xx\"} 1",
            "portcullis_jobs_queued{kind=\"process_event\"} 7",
            "portcullis_token_request_duration_seconds_bucket{credential=\"password\",le=\"0.005\"} 1",
            "# HELP portcullis_token_requests_total Registry token requests",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
