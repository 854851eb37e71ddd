//! Liveness and readiness for a worker process, on `health_addr` when set: `GET /health`
//! answers 200 while the process runs; `GET /ready` answers 200 only while every role it
//! runs holds a broker connection and PostgreSQL answers, else 503 — with a JSON body saying
//! which part is down. (A deliberately tiny HTTP/1.1 responder: two fixed routes, no body
//! parsing, so it needs no web framework.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Which roles are connected to the broker right now.
#[derive(Default)]
pub struct Health {
    roles: Mutex<BTreeMap<&'static str, bool>>,
}

impl Health {
    pub fn set(&self, role: &'static str, connected: bool) {
        self.roles.lock().expect("health lock").insert(role, connected);
    }

    fn roles(&self) -> BTreeMap<&'static str, bool> {
        self.roles.lock().expect("health lock").clone()
    }
}

/// Serves `/health` and `/ready` until shutdown.
pub async fn serve(listener: TcpListener, health: Arc<Health>, pool: PgPool, shutdown: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
        };
        let (health, pool) = (health.clone(), pool.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
                .await
                .ok()
                .and_then(Result::ok);
            let request = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).into_owned();
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            const JSON: &str = "application/json";
            let (status, content_type, body) = match path {
                "/health" => ("200 OK", JSON, serde_json::json!({ "status": "alive" }).to_string()),
                "/metrics" => {
                    let handle = penstock_api::prometheus();
                    handle.run_upkeep();
                    ("200 OK", "text/plain; version=0.0.4; charset=utf-8", handle.render())
                }
                "/ready" => {
                    let database = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&pool))
                        .await
                        .is_ok_and(|r| r.is_ok());
                    let roles = health.roles();
                    let ready = database && !roles.is_empty() && roles.values().all(|c| *c);
                    let status = if ready { "200 OK" } else { "503 Service Unavailable" };
                    let body = serde_json::json!({ "ready": ready, "database": database, "broker": roles });
                    (status, JSON, body.to_string())
                }
                _ => (
                    "404 Not Found",
                    JSON,
                    serde_json::json!({ "error": "not found", "detail": "use /health, /ready or /metrics" })
                        .to_string(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}
