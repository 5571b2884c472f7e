//! The process-wide TLS crypto provider (rustls with ring), which every HTTP client of the
//! crate (peer and remote) and the TLS listeners need.

/// Install the process-wide rustls crypto provider (ring). Idempotent. HTTP clients built with
/// this crate's `reqwest` need it, so call it before building one yourself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
