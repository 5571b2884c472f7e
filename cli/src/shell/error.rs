//! The shell's error type: what went wrong with a command, worded for the person at the prompt.

use std::path::PathBuf;

/// An error of one shell command. The session goes on after any of them.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The database refused or failed the statement. SQL errors print SQLite's own message.
    #[error("{}", db_message(.0))]
    Db(#[from] hiqlite::Error),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Writing the output failed (e.g. a closed pipe).
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
    /// Reading the input failed.
    #[error("input: {0}")]
    Input(std::io::Error),
    /// An HTTP call to a maintenance endpoint failed.
    #[error("{0}")]
    Http(String),
    /// A dot-command was misused; the message says how to use it.
    #[error("{0}")]
    Usage(String),
    /// The user interrupted the command (Ctrl-C).
    #[error("interrupted{0}")]
    Interrupted(&'static str),
}

/// SQLite's message for an SQL error, the error's own wording otherwise.
fn db_message(e: &hiqlite::Error) -> String {
    match e {
        hiqlite::Error::Sql { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

impl ShellError {
    /// A file error naming the file.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ShellError::File { path: path.into(), source }
    }
}

/// Result of a shell command.
pub type Result<T, E = ShellError> = std::result::Result<T, E>;
