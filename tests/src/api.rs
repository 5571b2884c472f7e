//! A plain HTTP client of the rqlite API for end-to-end tests.

use std::time::Duration;

use serde_json::{json, Value};

/// Deadline of the conditions `eventually_values` waits for.
const T: Duration = Duration::from_secs(60);

/// A plain HTTP client of the rqlite API for tests: no redirects followed, bodies as text.
pub struct Api {
    /// The underlying client, for requests the helpers do not cover.
    pub http: reqwest::Client,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    pub fn new() -> Self {
        hiqlite::install_crypto_provider();
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Api { http }
    }
    pub async fn post(
        &self,
        addr: &str,
        path: &str,
        body: &str,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let r = self
            .http
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("send");
        let (s, h) = (r.status().as_u16(), r.headers().clone());
        (s, r.text().await.expect("text"), h)
    }
    pub async fn get(&self, addr: &str, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let r = self.http.get(format!("http://{addr}{path}")).send().await.expect("send");
        let (s, h) = (r.status().as_u16(), r.headers().clone());
        (s, r.text().await.expect("text"), h)
    }
    pub async fn post_json(&self, addr: &str, path: &str, body: &str) -> Value {
        let (s, t, _) = self.post(addr, path, body).await;
        assert_eq!(s, 200, "{path}: {t}");
        serde_json::from_str(&t).expect("json")
    }
    /// Repeat a query until its first result has the values `want` (a condition that becomes
    /// true, e.g. once a follower has applied a write and heard from the leader), up to `T`.
    pub async fn eventually_values(&self, addr: &str, path: &str, body: &str, want: Value) {
        let deadline = std::time::Instant::now() + T;
        loop {
            let r = self.post_json(addr, path, body).await;
            if r["results"][0]["values"] == want {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{path}: {r}, want values {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    /// GET and expect 200; the body.
    pub async fn get_text(&self, addr: &str, path: &str) -> String {
        let (s, t, _) = self.get(addr, path).await;
        assert_eq!(s, 200, "{path}: {t}");
        t
    }
    /// The values of one statement read through the log (`level=strong`).
    pub async fn values(&self, addr: &str, sql: &str) -> Value {
        let r = self.post_json(addr, "/db/query?level=strong", &json!([sql]).to_string()).await;
        r["results"][0].get("values").cloned().unwrap_or(json!(null))
    }
}
