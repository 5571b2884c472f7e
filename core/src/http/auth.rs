//! rqlite-style Basic auth for the client API: a users file (JSON) lists users, passwords (plain
//! or bcrypt hashes) and permissions; user `*` grants permissions to everyone, including
//! requests without credentials. A bcrypt check costs tens of milliseconds of CPU by design, so
//! credentials that passed one are remembered for a minute (as a keyed hash, never in clear):
//! clients that poll, like the web console, pay it once a minute rather than every request.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Permissions a user may hold.
pub(crate) const PERMS: &[&str] =
    &["all", "execute", "query", "status", "ready", "backup", "load", "leader-ops", "remove", "join"];

#[derive(Deserialize)]
struct UserEntry {
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    perms: Vec<String>,
}

struct User {
    password: String,
    perms: BTreeSet<String>,
}

/// The loaded users file.
pub(crate) struct Users {
    users: HashMap<String, User>,
    anyone: BTreeSet<String>,
    /// Credentials a bcrypt check accepted: keyed hash of (user, password) -> when.
    verified: Mutex<HashMap<u64, Instant>>,
    /// The hash's random key (this process only).
    key: std::collections::hash_map::RandomState,
}

/// How long a bcrypt check's success is remembered.
const VERIFIED_FOR: Duration = Duration::from_secs(60);
/// At most this many remembered credentials (past it, all are forgotten).
const VERIFIED_MAX: usize = 1024;

/// Outcome of checking a request.
pub(crate) enum Verdict {
    Allowed,
    /// Wrong or missing credentials, or a user without the permission.
    Denied(String),
}

impl Users {
    pub(crate) fn load(path: &Path) -> Result<Users> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read users file {}: {e}", path.display())))?;
        let entries: Vec<UserEntry> = serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!("users file {} is not a JSON list of users: {e}", path.display()))
        })?;
        let mut users = HashMap::new();
        let mut anyone = BTreeSet::new();
        for u in entries {
            for p in &u.perms {
                if !PERMS.contains(&p.as_str()) {
                    return Err(Error::Config(format!("unknown permission {p:?} for user {:?}", u.username)));
                }
            }
            let perms: BTreeSet<String> = u.perms.into_iter().collect();
            if u.username == "*" {
                anyone = perms;
            } else {
                users.insert(u.username, User { password: u.password, perms });
            }
        }
        Ok(Users { users, anyone, verified: Mutex::new(HashMap::new()), key: Default::default() })
    }

    fn grants(perms: &BTreeSet<String>, perm: &str) -> bool {
        perms.contains("all") || perms.contains(perm)
    }

    /// Check an `Authorization` header value (or its absence) against a permission.
    pub(crate) fn check(&self, authorization: Option<&str>, perm: &str) -> Verdict {
        match self.identify(authorization) {
            Ok(None) if Self::grants(&self.anyone, perm) => Verdict::Allowed,
            Ok(None) => Verdict::Denied(format!("credentials required for {perm}")),
            Ok(Some((name, user))) => {
                if Self::grants(&user.perms, perm) || Self::grants(&self.anyone, perm) {
                    Verdict::Allowed
                } else {
                    Verdict::Denied(format!("user {name} lacks the {perm} permission"))
                }
            }
            Err(why) => Verdict::Denied(why),
        }
    }

    /// Who an `Authorization` header value names and what they may do: `Ok(None)` for no
    /// credentials (anyone, with the `*` user's permissions), `Err` for wrong or malformed
    /// ones. Permissions are the user's and everyone's, sorted.
    pub(crate) fn whoami(&self, authorization: Option<&str>) -> Result<Identity, String> {
        let who = self.identify(authorization)?;
        let mut perms = self.anyone.clone();
        if let Some((_, u)) = &who {
            perms.extend(u.perms.iter().cloned());
        }
        Ok(Identity { user: who.map(|(n, _)| n), perms: perms.into_iter().collect() })
    }

    /// The user an `Authorization` header value names, its password checked.
    fn identify(&self, authorization: Option<&str>) -> Result<Option<(String, &User)>, String> {
        let Some(h) = authorization else { return Ok(None) };
        let Some(b64) = h.strip_prefix("Basic ") else {
            return Err("only Basic authorization is supported".into());
        };
        let Some((name, pass)) = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())))
        else {
            return Err("malformed Basic credentials".into());
        };
        let Some(user) = self.users.get(&name) else {
            return Err("invalid username or password".into());
        };
        let ok = if user.password.starts_with("$2") {
            self.bcrypt_ok(&name, &pass, &user.password)
        } else {
            bool::from(pass.as_bytes().ct_eq(user.password.as_bytes()))
        };
        if !ok {
            return Err("invalid username or password".into());
        }
        Ok(Some((name, user)))
    }
}

impl Users {
    /// `bcrypt::verify`, or a success of it for the same user and password less than a minute ago.
    fn bcrypt_ok(&self, name: &str, pass: &str, hash: &str) -> bool {
        let h = self.key.hash_one((name, pass));
        let now = Instant::now();
        let seen = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(&h).is_some_and(|t| now.duration_since(*t) < VERIFIED_FOR) {
            return true;
        }
        drop(seen);
        if !bcrypt::verify(pass, hash).unwrap_or(false) {
            return false;
        }
        let mut seen = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, t| now.duration_since(*t) < VERIFIED_FOR);
        if seen.len() >= VERIFIED_MAX {
            seen.clear();
        }
        seen.insert(h, now);
        true
    }
}

/// Who is asking (`/console/api/whoami`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Identity {
    /// The user name; none without credentials.
    pub user: Option<String>,
    /// The permissions granted, sorted.
    pub perms: Vec<String>,
}

/// The permission an endpoint needs (`/db/request` needs `query`, and `execute` for writes).
pub(crate) fn required(method: &axum::http::Method, path: &str) -> Option<&'static str> {
    Some(match path {
        "/leader" if method == axum::http::Method::POST => "leader-ops",
        "/db/execute" | "/db/migrate" => "execute",
        "/db/query" | "/db/request" | "/db/changes" | "/db/watch" => "query",
        // hiqlite's `/snapshot` touches the data as a backup does.
        "/db/backup" | "/snapshot" => "backup",
        "/db/load" => "load",
        "/status" | "/nodes" | "/metrics" | "/leader" => "status",
        "/readyz" => "ready",
        // The console's data endpoints; its pages and `whoami` are open (whoami checks the
        // credentials it is given itself).
        "/console/api/cluster" | "/console/api/series" => "status",
        "/remove" => "remove",
        // hiqlite's coordination primitives: reading is a query, anything else a write.
        p if p.starts_with("/lock/") || p.starts_with("/notify/") => "execute",
        p if p.starts_with("/listen/") => "query",
        p if p.starts_with("/kv/") || p.starts_with("/counter/") => {
            if method == axum::http::Method::GET {
                "query"
            } else {
                "execute"
            }
        }
        // hiqlite's interactive transactions write.
        p if p == "/db/tx" || p.starts_with("/db/tx/") => "execute",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
    }

    #[test]
    fn permissions_plain_and_bcrypt() {
        let dir = tempfile::tempdir().expect("tmp");
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let f = dir.path().join("users.json");
        std::fs::write(
            &f,
            serde_json::json!([
                {"username": "bob", "password": "pw", "perms": ["all"]},
                {"username": "mary", "password": hash, "perms": ["query"]},
                {"username": "*", "perms": ["status", "ready"]}
            ])
            .to_string(),
        )
        .expect("write");
        let u = Users::load(&f).expect("load");
        assert!(matches!(u.check(Some(&basic("bob", "pw")), "execute"), Verdict::Allowed));
        assert!(matches!(u.check(Some(&basic("bob", "nope")), "query"), Verdict::Denied(_)));
        assert!(matches!(u.check(Some(&basic("mary", "s3cret")), "query"), Verdict::Allowed));
        // Remembered after one bcrypt check; a wrong password is still refused.
        assert_eq!(u.verified.lock().map(|v| v.len()).unwrap_or(0), 1);
        assert!(matches!(u.check(Some(&basic("mary", "s3cret")), "query"), Verdict::Allowed));
        assert!(matches!(u.check(Some(&basic("mary", "s3cret!")), "query"), Verdict::Denied(_)));
        assert!(matches!(u.check(Some(&basic("mary", "s3cret")), "execute"), Verdict::Denied(_)));
        assert!(matches!(u.check(Some(&basic("mary", "s3cret")), "status"), Verdict::Allowed));
        assert!(matches!(u.check(None, "status"), Verdict::Allowed));
        assert!(matches!(u.check(None, "query"), Verdict::Denied(_)));
        assert!(matches!(u.check(Some("Bearer x"), "status"), Verdict::Denied(_)));
        let me = u.whoami(Some(&basic("mary", "s3cret"))).expect("mary");
        assert_eq!(me.user.as_deref(), Some("mary"));
        assert_eq!(me.perms, ["query", "ready", "status"]);
        assert_eq!(u.whoami(None).expect("anyone").perms, ["ready", "status"]);
        assert!(u.whoami(Some(&basic("mary", "x"))).is_err());
        std::fs::write(&f, r#"[{"username": "x", "perms": ["fly"]}]"#).expect("write");
        assert!(Users::load(&f).is_err());
    }
}
