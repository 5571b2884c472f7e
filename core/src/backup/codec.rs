//! The stored form of a backup: the backup file compressed with zstd and, with a key, sealed
//! with ChaCha20-Poly1305 in the STREAM construction (`aead-stream`), so that a backup of any
//! size is encrypted and checked chunk by chunk, and a truncated or reordered object fails.
//!
//! Encrypted layout: `"HQBKENC1"`, a 7-byte random nonce prefix, then 1 MiB chunks of the
//! compressed bytes, each followed by its 16-byte tag; the last chunk (possibly empty) is sealed
//! as the last, so cutting the object at a chunk boundary is detected too.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use aead_stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::ChaCha20Poly1305;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"HQBKENC1";
const NONCE: usize = 7;
const CHUNK: usize = 1 << 20;
const TAG: usize = 16;
/// zstd frames start with these bytes.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A 32-byte encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupKey([u8; 32]);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

impl BackupKey {
    /// Parse 64 hexadecimal digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || Error::Config("a backup encryption key is 64 hexadecimal digits (32 bytes)".into());
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(BackupKey(key))
    }
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Storage(format!("{what}: {e}"))
}

/// Writes sealed chunks of what it is given to `out`.
struct Sealer<W: Write> {
    out: W,
    enc: Option<EncryptorBE32<ChaCha20Poly1305>>,
    buf: Vec<u8>,
}

impl<W: Write> Sealer<W> {
    fn new(mut out: W, key: &BackupKey) -> std::io::Result<Self> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
        out.write_all(MAGIC)?;
        out.write_all(&nonce)?;
        let enc = EncryptorBE32::<ChaCha20Poly1305>::new(&key.0.into(), &nonce.into());
        Ok(Sealer { out, enc: Some(enc), buf: Vec::with_capacity(CHUNK) })
    }

    fn finish(mut self) -> std::io::Result<W> {
        let enc = self.enc.take().ok_or_else(|| std::io::Error::other("sealed twice"))?;
        let sealed =
            enc.encrypt_last(&self.buf[..]).map_err(|_| std::io::Error::other("encryption failed"))?;
        self.out.write_all(&sealed)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // A full chunk is sealed only once more bytes arrive: the final one must be sealed
        // as the last.
        if self.buf.len() == CHUNK {
            let enc = self.enc.as_mut().ok_or_else(|| std::io::Error::other("already sealed"))?;
            let sealed =
                enc.encrypt_next(&self.buf[..]).map_err(|_| std::io::Error::other("encryption failed"))?;
            self.out.write_all(&sealed)?;
            self.buf.clear();
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Compress (and with `key`, encrypt) the file `src` into `dst`; its size.
pub(crate) fn encode(src: &Path, dst: &Path, level: i32, key: Option<&BackupKey>) -> Result<u64> {
    let mut input = std::fs::File::open(src).map_err(|e| io("reading the backup", e))?;
    let out = std::fs::File::create(dst).map_err(|e| io("writing the backup object", e))?;
    let out = std::io::BufWriter::new(out);
    let file = match key {
        None => {
            let mut z = zstd::Encoder::new(out, level).map_err(|e| io("compressing", e))?;
            std::io::copy(&mut input, &mut z).map_err(|e| io("compressing", e))?;
            z.finish().map_err(|e| io("compressing", e))?
        }
        Some(k) => {
            let sealer = Sealer::new(out, k).map_err(|e| io("encrypting", e))?;
            let mut z = zstd::Encoder::new(sealer, level).map_err(|e| io("compressing", e))?;
            std::io::copy(&mut input, &mut z).map_err(|e| io("compressing", e))?;
            z.finish().and_then(Sealer::finish).map_err(|e| io("encrypting", e))?
        }
    };
    let file = file.into_inner().map_err(|e| io("writing the backup object", e.into_error()))?;
    file.sync_all().map_err(|e| io("syncing the backup object", e))?;
    Ok(file.metadata().map_err(|e| io("reading the backup object", e))?.len())
}

/// Reads the plain bytes of a sealed stream, checking each chunk.
struct Opener<R: BufRead> {
    input: R,
    dec: Option<DecryptorBE32<ChaCha20Poly1305>>,
    plain: Vec<u8>,
    at: usize,
}

impl<R: BufRead> Opener<R> {
    fn refill(&mut self) -> std::io::Result<()> {
        let Some(dec) = self.dec.as_mut() else { return Ok(()) };
        let mut sealed = Vec::with_capacity(CHUNK + TAG);
        (&mut self.input).take((CHUNK + TAG) as u64).read_to_end(&mut sealed)?;
        let last = sealed.len() < CHUNK + TAG || self.input.fill_buf()?.is_empty();
        let wrong = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the backup cannot be decrypted: wrong key, or the object is damaged or cut short",
            )
        };
        self.plain = if last {
            let dec = self.dec.take().ok_or_else(wrong)?;
            dec.decrypt_last(&sealed[..]).map_err(|_| wrong())?
        } else {
            dec.decrypt_next(&sealed[..]).map_err(|_| wrong())?
        };
        self.at = 0;
        Ok(())
    }
}

impl<R: BufRead> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.plain.len() {
            if self.dec.is_none() {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Turn the stored object `src` back into a backup file at `dst`. An encrypted object needs
/// `key`; a wrong key, or a damaged object, is an error.
pub(crate) fn decode(src: &Path, dst: &Path, key: Option<&BackupKey>) -> Result<()> {
    let mut input = BufReader::new(std::fs::File::open(src).map_err(|e| io("reading the backup object", e))?);
    let head = input.fill_buf().map_err(|e| io("reading the backup object", e))?;
    let mut out = std::fs::File::create(dst).map_err(|e| io("writing the backup", e))?;
    if head.starts_with(MAGIC) {
        let Some(key) = key else {
            return Err(Error::Config(
                "this backup is encrypted: give its key (encryption_key, HIQLITE_BACKUP_KEY)".into(),
            ));
        };
        let mut prefix = [0u8; 8 + NONCE];
        input.read_exact(&mut prefix).map_err(|e| io("reading the backup object", e))?;
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&prefix[8..]);
        let dec = DecryptorBE32::<ChaCha20Poly1305>::new(&key.0.into(), &nonce.into());
        let opener = Opener { input, dec: Some(dec), plain: Vec::new(), at: 0 };
        let mut z = zstd::Decoder::new(opener).map_err(|e| io("decompressing", e))?;
        std::io::copy(&mut z, &mut out).map_err(|e| Error::Config(format!("restoring the backup: {e}")))?;
    } else if head.starts_with(&ZSTD_MAGIC) {
        let mut z = zstd::Decoder::new(input).map_err(|e| io("decompressing", e))?;
        std::io::copy(&mut z, &mut out).map_err(|e| Error::Config(format!("restoring the backup: {e}")))?;
    } else {
        return Err(Error::Config("not a hiqlite backup object (neither zstd nor encrypted)".into()));
    }
    out.sync_all().map_err(|e| io("syncing the backup", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(len: usize, key: Option<&BackupKey>) {
        let dir = tempfile::tempdir().expect("tmp");
        let (src, obj, back) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        // Not compressible, so the sealed stream spans several chunks.
        let mut data = vec![0u8; len];
        getrandom::fill(&mut data).expect("random");
        std::fs::write(&src, &data).expect("write");
        encode(&src, &obj, 3, key).expect("encode");
        decode(&obj, &back, key).expect("decode");
        assert_eq!(std::fs::read(&back).expect("read"), data);
    }

    #[test]
    fn plain_and_sealed_objects_round_trip() {
        let key = BackupKey::from_hex(&"ab".repeat(32)).expect("key");
        for len in [0, 10, CHUNK - 3, 3 * CHUNK + 17] {
            round_trip(len, None);
            round_trip(len, Some(&key));
        }
    }

    #[test]
    fn a_sealed_object_needs_its_key_and_its_whole_length() {
        let dir = tempfile::tempdir().expect("tmp");
        let (src, obj, back) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        let mut data = vec![0u8; 2 * CHUNK + 5];
        getrandom::fill(&mut data).expect("random");
        std::fs::write(&src, &data).expect("write");
        let key = BackupKey::from_hex(&"01".repeat(32)).expect("key");
        encode(&src, &obj, 3, Some(&key)).expect("encode");
        let sealed = std::fs::read(&obj).expect("read");
        assert!(!sealed.windows(64).any(|w| data.windows(64).next() == Some(w)), "plaintext leaked");
        assert!(matches!(decode(&obj, &back, None), Err(Error::Config(m)) if m.contains("encrypted")));
        let other = BackupKey::from_hex(&"02".repeat(32)).expect("key");
        assert!(
            matches!(decode(&obj, &back, Some(&other)), Err(Error::Config(m)) if m.contains("wrong key"))
        );
        // Cut at a chunk boundary: the chunk before the cut was not sealed as the last.
        std::fs::write(&obj, &sealed[..8 + NONCE + CHUNK + TAG]).expect("cut");
        assert!(decode(&obj, &back, Some(&key)).is_err());
        assert!(BackupKey::from_hex("abc").is_err() && BackupKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
