//! `GET /metrics`: the node for Prometheus (OpenMetrics text). Cases by
//! state, open and overdue; the writes of the change feed; each peer's link,
//! backlog each way, seconds since the last sync and bytes each way;
//! records set aside; the store's size on disk; open supervision orders.
//! Read from the loopback address, or with the administrator's token.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hallsync_api::{ApiError, Service};
use hallsync_hall::CaseFilter;
use hallsync_model::order::OrderState;
use hallsync_model::{CaseState, Ts};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::Failure;
use crate::App;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WayLabel {
    peer: String,
    role: String,
    direction: String,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// Bytes of the files under `dir`.
fn size_on_disk(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_on_disk(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The metrics at `now`, as OpenMetrics text.
pub fn render(svc: &Service, store_dir: &Path, now: Ts) -> Result<String, ApiError> {
    let hall = svc.hall();
    let store = hall.store();
    let mut registry = Registry::with_prefix("hallsync");

    let by_state = Family::<StateLabel, Gauge>::default();
    let mut open = 0i64;
    for code in 1..=15u8 {
        let Some(state) = CaseState::from_code(code) else {
            continue;
        };
        let n =
            i64::try_from(hall.count_cases_in(state).map_err(ApiError::from)?).unwrap_or(i64::MAX);
        if state.is_open() {
            open += n;
        }
        by_state
            .get_or_create(&StateLabel {
                state: state.name().into(),
            })
            .set(n);
    }
    registry.register("cases", "Cases by standard state", by_state);
    gauge(
        &mut registry,
        "cases_open",
        "Cases still being worked on",
        open,
    );
    let overdue = CaseFilter {
        overdue: true,
        ..CaseFilter::default()
    };
    let overdue = hall.list_cases(&overdue, now)?.len();
    gauge(
        &mut registry,
        "cases_overdue",
        "Open cases past their committed due time",
        i64::try_from(overdue).unwrap_or(i64::MAX),
    );
    let writes = Counter::<u64>::default();
    writes.inc_by(store.durable_seq());
    registry.register(
        "feed_writes",
        "Durable writes of the change feed (its newest sequence number)",
        writes,
    );
    let orders = hall.orders(now)?;
    gauge(
        &mut registry,
        "orders_open",
        "Supervision orders held here and not closed",
        i64::try_from(
            orders
                .iter()
                .filter(|o| o.view.state != OrderState::Closed)
                .count(),
        )
        .unwrap_or(i64::MAX),
    );
    gauge(
        &mut registry,
        "store_bytes",
        "Bytes of the store's files on disk",
        saturating(size_on_disk(store_dir)),
    );
    if let Some(status) = svc.status() {
        let up = Family::<PeerLabel, Gauge>::default();
        let since = Family::<PeerLabel, Gauge>::default();
        let backlog = Family::<WayLabel, Gauge>::default();
        let bytes = Family::<WayLabel, Counter>::default();
        let skew = Family::<PeerLabel, Gauge>::default();
        for p in &status.peers {
            let role = format!("{:?}", p.role).to_lowercase();
            let label = PeerLabel {
                peer: p.id.clone(),
                role: role.clone(),
            };
            up.get_or_create(&label).set(i64::from(p.connected));
            if let Some(t) = p.last_sync {
                since.get_or_create(&label).set((now.0 - t).max(0));
            }
            if let Some(s) = p.clock_skew_secs {
                skew.get_or_create(&label).set(s);
            }
            for (direction, queued, wire) in [
                ("out", p.backlog_out, p.wire_tx),
                ("in", p.backlog_in, p.wire_rx),
            ] {
                let way = WayLabel {
                    peer: p.id.clone(),
                    role: role.clone(),
                    direction: direction.into(),
                };
                backlog.get_or_create(&way).set(saturating(queued));
                bytes.get_or_create(&way).inc_by(wire);
            }
        }
        registry.register("peer_up", "Whether the link to the peer is up", up);
        registry.register(
            "peer_seconds_since_sync",
            "Seconds since both directions of the link were last caught up",
            since,
        );
        registry.register(
            "peer_backlog",
            "Change feed entries not yet taken by the other side",
            backlog,
        );
        registry.register(
            "peer_clock_skew_seconds",
            "How far the peer's clock is ahead of this node's (negative: behind)",
            skew,
        );
        registry.register(
            "peer_wire_bytes",
            "Bytes on the wire of the link's current connection",
            bytes,
        );
        gauge(
            &mut registry,
            "set_aside",
            "Records set aside in replication, either way",
            i64::try_from(status.set_aside.len()).unwrap_or(i64::MAX),
        );
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| ApiError::new(500, "internal", format!("encoding the metrics: {e}")))?;
    Ok(text)
}

/// The `/metrics` handler.
pub async fn handler(
    State(app): State<Arc<App>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    if !from.ip().is_loopback() && !app.auth.is_local(&headers) {
        return Err(ApiError::forbidden(
            "metrics are served to this machine, or with the administrator's token",
        )
        .into());
    }
    let now = (app.clock)();
    let text = tokio::task::spawn_blocking(move || render(&app.svc, &app.store_dir, now))
        .await
        .map_err(|e| ApiError::new(500, "internal", format!("the metrics stopped: {e}")))??;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
