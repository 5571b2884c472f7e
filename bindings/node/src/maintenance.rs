//! Backups, restores and migrations on `Database`: one call each of the core's
//! `Client::backup`, `Client::restore` and `Client::migrate` (with `Migration::from_dir` for a
//! folder of numbered `.sql` files).

use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use hiqlite::Migration;

use crate::convert;
use crate::database::Database;
use crate::error::Failure;
use crate::settle;

/// A folder's path, or an array of `{ id, name, sql }`.
fn migrations(spec: serde_json::Value) -> Result<Vec<Migration>, Failure> {
    match spec {
        serde_json::Value::String(dir) => Ok(Migration::from_dir(dir)?),
        list @ serde_json::Value::Array(_) => serde_json::from_value(list)
            .map_err(|e| Failure::invalid(format!("migrations must be {{ id, name, sql }} objects: {e}"))),
        _ => Err(Failure::invalid("migrations must be a folder's path or an array of { id, name, sql }")),
    }
}

#[napi]
impl Database {
    /// Write a consistent online backup (a SQLite file that also carries hiqlite's state) to
    /// `path`, which must not exist. Resolves to the log index it holds, or `null` when a
    /// remote node does not say. Start a new cluster from it with the config key
    /// `restore_from`, or load it into a running one with `restore`.
    #[napi(ts_args_type = "path: string", ts_return_type = "Promise<number | null>")]
    pub fn backup<'env>(
        &self,
        env: &'env Env,
        path: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let prepared = convert::string(path, "path").and_then(|p| Ok((self.shared.client()?, p)));
        settle(
            env,
            async move {
                let (client, path) = prepared?;
                Ok(client.backup(path).await?)
            },
            |_, index| Ok(index.map(|i| i as f64)),
        )
    }

    /// Load a backup (or any SQLite file) into the running cluster: every table and view is
    /// replaced by the file's, in one replicated transaction.
    #[napi(ts_args_type = "path: string", ts_return_type = "Promise<void>")]
    pub fn restore<'env>(&self, env: &'env Env, path: Unknown<'_>) -> napi::Result<PromiseRaw<'env, ()>> {
        let prepared = convert::string(path, "path").and_then(|p| Ok((self.shared.client()?, p)));
        settle(
            env,
            async move {
                let (client, path) = prepared?;
                Ok(client.restore(path).await?)
            },
            |_, ()| Ok(()),
        )
    }

    /// Apply ordered migrations once, cluster-wide: a folder of numbered `.sql` files
    /// (`1_init.sql`, `002_more.sql`, ...) or an array of `{ id, name, sql }`. Resolves to how
    /// many were applied now; a migration changed after it was applied is an error.
    #[napi(
        ts_args_type = "migrations: string | Array<{ id: number; name: string; sql: string }>",
        ts_return_type = "Promise<number>"
    )]
    pub fn migrate<'env>(
        &self,
        env: &'env Env,
        migrations_spec: serde_json::Value,
    ) -> napi::Result<PromiseRaw<'env, u32>> {
        let prepared = migrations(migrations_spec).and_then(|m| Ok((self.shared.client()?, m)));
        settle(
            env,
            async move {
                let (client, list) = prepared?;
                Ok(client.migrate(&list).await?)
            },
            |_, n| Ok(u32::try_from(n).unwrap_or(u32::MAX)),
        )
    }
}
