//! The network between nodes, made of loopback proxies the harness controls.
//!
//! Node `i` lives on its own loopback address `127.0.0.<10+i>` and sends peer traffic from it
//! (a node binds its outgoing peer connections to its listener's address). Each node's Raft
//! listener is fronted by a proxy on the same address, which is what the cluster knows as that
//! node's peer address. The proxy sees which node a connection comes from by its source address,
//! so it can cut or delay the traffic of any ordered pair: `from -> to` are the connections `from`
//! opens to `to` (its RPCs and their answers).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The loopback address of node index `i` (0-based).
pub fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + i as u8)
}

/// What happens to the traffic of one ordered pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    /// Passed through.
    #[default]
    Up,
    /// Connections are refused and open ones are cut.
    Cut,
    /// Every chunk is held back this long in each direction.
    Delay(Duration),
}

#[derive(Default)]
struct Rules {
    links: HashMap<(usize, usize), Link>,
}

/// The proxies of a cluster and their rules. Cheap to clone.
#[derive(Clone)]
pub struct Net {
    n: usize,
    rules: Arc<Mutex<Rules>>,
    /// Bumped on every rule change, so open connections re-check their link.
    changed: watch::Sender<u64>,
}

fn lock(r: &Mutex<Rules>) -> std::sync::MutexGuard<'_, Rules> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl Net {
    /// Rules for `n` nodes, all links up.
    pub fn new(n: usize) -> Net {
        Net { n, rules: Arc::default(), changed: watch::channel(0).0 }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Set the link `from -> to`.
    pub fn set(&self, from: usize, to: usize, link: Link) {
        lock(&self.rules).links.insert((from, to), link);
        self.bump();
    }

    /// The link `from -> to`.
    pub fn link(&self, from: usize, to: usize) -> Link {
        lock(&self.rules).links.get(&(from, to)).copied().unwrap_or_default()
    }

    /// Cut both directions between every node of `a` and every node of `b`.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        {
            let mut r = lock(&self.rules);
            for &x in a {
                for &y in b {
                    r.links.insert((x, y), Link::Cut);
                    r.links.insert((y, x), Link::Cut);
                }
            }
        }
        self.bump();
    }

    /// Every link up again.
    pub fn heal(&self) {
        lock(&self.rules).links.clear();
        self.bump();
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True for an empty network.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn source_node(&self, peer: SocketAddr) -> Option<usize> {
        match peer.ip() {
            IpAddr::V4(v4) => (0..self.n).find(|&i| node_ip(i) == v4),
            IpAddr::V6(_) => None,
        }
    }

    /// Serve the proxy in front of node `to`: accept on `listen`, forward to `upstream`.
    pub async fn serve(&self, to: usize, listen: TcpListener, upstream: SocketAddr) {
        loop {
            let Ok((down, peer)) = listen.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Some(from) = self.source_node(peer) else {
                // Not a node of ours: no rule applies.
                tokio::spawn(pipe(down, upstream, None, self.clone()));
                continue;
            };
            if self.link(from, to) == Link::Cut {
                drop(down);
                continue;
            }
            tokio::spawn(pipe(down, upstream, Some((from, to)), self.clone()));
        }
    }
}

/// Copy both ways until either side closes or the pair's link is cut.
async fn pipe(down: TcpStream, upstream: SocketAddr, pair: Option<(usize, usize)>, net: Net) {
    let Ok(up) = TcpStream::connect(upstream).await else { return };
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (dr, dw) = down.into_split();
    let (ur, uw) = up.into_split();
    let mut a = tokio::spawn(copy(dr, uw, pair, net.clone()));
    let mut b = tokio::spawn(copy(ur, dw, pair, net));
    // When one direction ends, end the other: a half-open proxied connection helps nobody.
    tokio::select! {
        _ = &mut a => b.abort(),
        _ = &mut b => a.abort(),
    }
}

async fn copy(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    pair: Option<(usize, usize)>,
    net: Net,
) {
    let mut changed = net.changed.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let link = pair.map_or(Link::Up, |(f, t)| net.link(f, t));
        if link == Link::Cut {
            return;
        }
        let n = tokio::select! {
            r = r.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            c = changed.changed() => {
                if c.is_err() {
                    return;
                }
                continue;
            }
        };
        if let Link::Delay(d) = link {
            tokio::time::sleep(d).await;
        }
        if pair.is_some_and(|(f, t)| net.link(f, t) == Link::Cut) {
            return;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
