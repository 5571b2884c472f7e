//! How a command's statements are logged and replicated: a statement whose SQL text is the same
//! as the one before it carries no text.
//!
//! A 1,000-row transaction repeats one `INSERT` text 1,000 times; written out, two thirds of its
//! log record was that text, encoded, checksummed, flushed, sent to every follower and decoded
//! there into 1,000 separate strings.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserializer, Serializer};

use crate::value::{Params, Statement};

/// Serialize `stmts` as `(text unless repeated, params)` pairs.
pub(crate) fn serialize<S: Serializer>(stmts: &[Statement], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(stmts.len()))?;
    let mut prev: Option<&str> = None;
    for st in stmts {
        let text = (prev != Some(st.sql.as_str())).then_some(st.sql.as_str());
        seq.serialize_element(&(text, &st.params))?;
        prev = Some(&st.sql);
    }
    seq.end()
}

/// The inverse of [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Statement>, D::Error> {
    struct Stmts;
    impl<'de> Visitor<'de> for Stmts {
        type Value = Vec<Statement>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence of statements")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // The hint comes from the input: bounded, so a corrupt length cannot reserve much.
            let mut out: Vec<Statement> = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(65_536));
            while let Some((text, params)) = seq.next_element::<(Option<String>, Params)>()? {
                let sql = match (text, out.last()) {
                    (Some(t), _) => t,
                    (None, Some(p)) => p.sql.clone(),
                    (None, None) => return Err(A::Error::custom("the first statement has no SQL text")),
                };
                out.push(Statement { sql, params });
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Stmts)
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, ExecMode};
    use crate::value::Statement;

    #[test]
    fn repeated_texts_are_sent_once_and_come_back() {
        let mut stmts: Vec<Statement> = (0..1000)
            .map(|i| Statement::new("INSERT INTO t (k, v) VALUES (?, ?)", crate::params![i, "row"]))
            .collect();
        stmts.insert(500, Statement::from("DELETE FROM t WHERE k < 10"));
        stmts.push(Statement::from("SELECT 1"));
        let cmd = Command::Execute { stmts, mode: ExecMode::Transaction, ts_ms: 7, seed: 9 };
        let bytes = postcard::to_allocvec(&cmd).expect("encode");
        // Three texts of ≤ 35 bytes plus 1,002 × (flag + params ≈ 8 bytes).
        assert!(bytes.len() < 12_000, "{} bytes", bytes.len());
        let back: Command = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, cmd);
        let json = serde_json::to_string(&cmd).expect("json");
        assert_eq!(serde_json::from_str::<Command>(&json).expect("json back"), cmd);
    }

    #[test]
    fn a_repeat_with_nothing_before_it_is_an_error() {
        let bad: Vec<(Option<String>, crate::value::Params)> = vec![(None, crate::value::Params::None)];
        let bytes = postcard::to_allocvec(&bad).expect("encode");
        let mut de = postcard::Deserializer::from_bytes(&bytes);
        assert!(super::deserialize(&mut de).is_err());
        // postcard drops custom messages; a self-describing format keeps it.
        let mut de = serde_json::Deserializer::from_str("[[null, \"None\"]]");
        let err = super::deserialize(&mut de).expect_err("must fail");
        assert!(err.to_string().contains("no SQL text"), "{err}");
    }
}
