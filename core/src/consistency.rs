//! How a read is served: its consistency level ([`Consistency`], with its one text spelling per
//! level) and its use of the query cache ([`CacheRead`]). Plain data, shared by the node, the
//! remote client and the language bindings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Consistency {
    /// Read this node's replica as it is (fastest; may lag on a follower).
    #[default]
    Local,
    /// Read on the node that believes it is the leader (forwarded if needed).
    Leader,
    /// Linearizable: confirm leadership with a quorum (read index), wait until this node has
    /// applied up to it, then read locally. Works on followers too.
    Linearizable,
}

impl Consistency {
    /// The level's name as every face of hiqlite spells it: `local`, `leader` or `linearizable`
    /// (what [`str::parse`] accepts). rqlite's HTTP names (`none`, `weak`, ...) are a different
    /// vocabulary, known only to the rqlite wire format.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Local => "local",
            Consistency::Leader => "leader",
            Consistency::Linearizable => "linearizable",
        }
    }
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Consistency {
    type Err = Error;

    /// `local`, `leader` or `linearizable`, in any case; anything else is
    /// [`Error::InvalidRequest`] naming the three.
    fn from_str(s: &str) -> Result<Self, Error> {
        [Consistency::Local, Consistency::Leader, Consistency::Linearizable]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "unknown consistency {s:?}: use \"local\", \"leader\" or \"linearizable\""
                ))
            })
    }
}

/// How a read uses the query cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CacheRead {
    /// Read the database; the cache is neither consulted nor filled.
    #[default]
    Bypass,
    /// Read through the cache; a stored result lives for the cache's configured TTL.
    DefaultTtl,
    /// Read through the cache; a stored result lives this long.
    Ttl(Duration),
}

impl CacheRead {
    /// A cached read with this TTL (`None`: the cache's default).
    pub(crate) fn cached(ttl: Option<Duration>) -> Self {
        ttl.map_or(CacheRead::DefaultTtl, CacheRead::Ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_level() {
        for c in [Consistency::Local, Consistency::Leader, Consistency::Linearizable] {
            assert_eq!(c.as_str().parse::<Consistency>(), Ok(c));
            assert_eq!(c.as_str().to_uppercase().parse::<Consistency>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        for other in ["none", "weak", "strong", "auto", "", " local", "linear"] {
            match other.parse::<Consistency>() {
                Err(Error::InvalidRequest(m)) => {
                    assert!(m.contains("local") && m.contains("leader") && m.contains("linearizable"), "{m}")
                }
                r => panic!("{other:?} gave {r:?}"),
            }
        }
    }

    #[test]
    fn cache_reads() {
        assert_eq!(CacheRead::cached(None), CacheRead::DefaultTtl);
        let d = Duration::from_secs(3);
        assert_eq!(CacheRead::cached(Some(d)), CacheRead::Ttl(d));
    }
}
