//! rqlite's read options as query-string words: the levels `none`, `weak`, `linearizable`,
//! `strong` and `auto`, and the `cache` / `cache_ttl` flags, mapped to and from hiqlite's
//! [`Consistency`] and [`CacheRead`]. Both the server and the remote client speak through here.

#[cfg(feature = "server")]
use super::server::parse_duration;
use crate::consistency::{CacheRead, Consistency};

/// A read level of rqlite's `level=` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// `none`: this node's data as it is.
    None,
    /// `weak` (the default; `auto` too): on the leader.
    Weak,
    /// `linearizable`: read index, then a local read.
    Linearizable,
    /// `strong`: the read goes through the Raft log, like a write.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    Strong,
}

impl Level {
    /// The `level` parameter's value (absent: `weak`, as in rqlite).
    #[cfg(feature = "server")]
    pub(crate) fn parse(v: Option<&str>) -> Result<Level, String> {
        match v {
            None | Some("weak") | Some("auto") => Ok(Level::Weak),
            Some("none") => Ok(Level::None),
            Some("linearizable") => Ok(Level::Linearizable),
            Some("strong") => Ok(Level::Strong),
            Some(other) => {
                Err(format!("unknown level {other}: use none, weak, linearizable, strong or auto"))
            }
        }
    }

    /// The level's word on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Weak => "weak",
            Level::Linearizable => "linearizable",
            Level::Strong => "strong",
        }
    }

    #[cfg(feature = "server")]
    /// How a read at this level is served; `None` for `strong`, which is not a read but a pass
    /// through the log.
    pub(crate) fn consistency(self) -> Option<Consistency> {
        match self {
            Level::None => Some(Consistency::Local),
            Level::Weak => Some(Consistency::Leader),
            Level::Linearizable => Some(Consistency::Linearizable),
            Level::Strong => None,
        }
    }
}

impl From<Consistency> for Level {
    fn from(c: Consistency) -> Level {
        match c {
            Consistency::Local => Level::None,
            Consistency::Leader => Level::Weak,
            Consistency::Linearizable => Level::Linearizable,
        }
    }
}

#[cfg(feature = "server")]
/// The cache use a query string asks for: `cache_ttl=<Go duration>` (a cached read with that
/// TTL), `cache` (the default TTL), neither (bypass).
pub(crate) fn parse_cache(cache_flag: bool, cache_ttl: Option<&str>) -> Result<CacheRead, String> {
    match cache_ttl {
        Some(d) => parse_duration(d).map(CacheRead::Ttl).ok_or_else(|| format!("invalid cache_ttl {d}")),
        None if cache_flag => Ok(CacheRead::DefaultTtl),
        None => Ok(CacheRead::Bypass),
    }
}

/// The query-string parameter for a cache use (`None`: nothing to add).
pub(crate) fn cache_param(c: CacheRead) -> Option<String> {
    match c {
        CacheRead::Bypass => None,
        CacheRead::DefaultTtl => Some("cache".into()),
        CacheRead::Ttl(d) => Some(format!("cache_ttl={}ms", d.as_millis().max(1))),
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::parse(None), Ok(Level::Weak));
        assert_eq!(Level::parse(Some("auto")), Ok(Level::Weak));
        assert!(Level::parse(Some("local")).is_err(), "hiqlite's names are not rqlite's");
        for l in [Level::None, Level::Weak, Level::Linearizable, Level::Strong] {
            assert_eq!(Level::parse(Some(l.as_str())), Ok(l));
            if let Some(c) = l.consistency() {
                assert_eq!(Level::from(c), l);
            }
        }
        assert_eq!(Level::Strong.consistency(), None);
    }

    #[test]
    fn cache_flags_round_trip() {
        for c in [CacheRead::Bypass, CacheRead::DefaultTtl, CacheRead::Ttl(Duration::from_millis(1500))] {
            let p = cache_param(c);
            let back = match p.as_deref() {
                None => parse_cache(false, None),
                Some("cache") => parse_cache(true, None),
                Some(q) => parse_cache(false, q.strip_prefix("cache_ttl=")),
            };
            assert_eq!(back, Ok(c), "{p:?}");
        }
        assert!(parse_cache(true, Some("soon")).is_err());
    }
}
