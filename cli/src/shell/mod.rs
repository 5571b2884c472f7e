//! `hiqlite shell`: an interactive SQL shell over the remote `Client` (so it works against
//! hiqlite and rqlite alike): command-line arguments, connecting, and the interactive or
//! non-interactive main loop. The pieces live in the submodules, one concern each.

mod dot;
mod editor;
mod error;
mod format;
mod script;
mod session;
mod split;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use hiqlite::{Client, Consistency};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use self::format::{Mode, Style};
use self::script::Runner;
use self::session::Session;

/// Arguments of `hiqlite shell`.
#[derive(Args, Debug)]
pub struct ShellArgs {
    /// API URL of a node (hiqlite or rqlite); more than one may be given. The others are
    /// learned from the cluster.
    #[arg(default_value = "http://127.0.0.1:4001")]
    urls: Vec<String>,
    /// Run this SQL or dot-command and exit (repeatable); stops at the first error, exit code 1.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// User name for HTTP Basic auth.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Password for HTTP Basic auth (asked on the terminal when --user is given without it).
    #[arg(long, env = "HIQLITE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// PEM CA certificate(s) to trust for https:// URLs.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    #[arg(long)]
    insecure: bool,
    /// Output mode: table, box, csv, json, line or list.
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<Mode>())]
    mode: Mode,
    /// Leave out column names.
    #[arg(long)]
    no_headers: bool,
    /// Read consistency: local, leader or linearizable.
    #[arg(long, default_value = "leader")]
    consistency: Consistency,
    /// Stop piped input at the first error.
    #[arg(long)]
    bail: bool,
    /// History file (default ~/.hiqlite_history; empty: no history).
    #[arg(long, env = "HIQLITE_HISTORY", hide_env_values = true)]
    history: Option<PathBuf>,
    /// Deadline of one statement, in seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

/// The URL with a scheme and without a trailing slash.
fn normalize(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    if u.contains("://") {
        u.to_string()
    } else {
        format!("http://{u}")
    }
}

fn connect(a: &ShellArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<Session> {
    use anyhow::Context;
    let ca = match &a.ca {
        Some(p) => {
            Some(std::fs::read(p).with_context(|| format!("cannot read the CA file {}", p.display()))?)
        }
        None => None,
    };
    let auth = match (&a.user, &a.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        // Asked on the terminal (not echoed), as psql does.
        (Some(u), None) => {
            let p = rpassword::prompt_password(format!("Password for {u}: "))
                .context("no terminal to ask the password on: give --password or set HIQLITE_PASSWORD")?;
            Some((u.clone(), p))
        }
        (None, Some(_)) => anyhow::bail!("--password needs --user"),
        (None, None) => None,
    };
    let timeout = Duration::try_from_secs_f64(a.timeout).context("--timeout must be a positive number")?;
    let mut b = Client::remote(a.urls.iter().map(|u| normalize(u)))
        .timeout(timeout)
        .consistency(a.consistency)
        .danger_accept_invalid_certs(a.insecure);
    if let Some((u, p)) = &auth {
        b = b.basic_auth(u, p);
    }
    if let Some(pem) = &ca {
        b = b.ca_cert_pem(pem.clone());
    }
    let client = b.build()?;
    let http = crate::transfer::Http::new(ca.as_deref(), a.insecure, auth)?;
    let style = Style { mode: a.mode, headers: !a.no_headers, ..Style::default() };
    let url = normalize(a.urls.first().map_or("http://127.0.0.1:4001", String::as_str));
    let mut s = Session::new(client, rt.handle().clone(), http, url, style, a.consistency);
    s.bail = a.bail;
    Ok(s)
}

/// Run the shell; returns the process exit code.
pub fn run(a: ShellArgs, rt: &tokio::runtime::Runtime) -> i32 {
    // Handles that drop transactions roll them back on the runtime.
    let _guard = rt.enter();
    let mut s = match connect(&a, rt) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return 1;
        }
    };
    let code = if !a.commands.is_empty() {
        // One statement at a time: the first error ends the run.
        let mut r = Runner::new(&mut s, script::Mode { batch: false, bail: true, lines: None });
        for c in &a.commands {
            r.text(c);
            if r.stopped {
                break;
            }
        }
        i32::from(r.errors > 0)
    } else if std::io::stdin().is_terminal() {
        interactive(&mut s, a.history)
    } else {
        let mode = script::Mode { batch: true, bail: s.bail, lines: Some(None) };
        let mut r = Runner::new(&mut s, mode);
        let res = r.stream(std::io::stdin().lock(), |_| {});
        let errors = r.errors;
        match res {
            Ok(()) => i32::from(errors > 0),
            Err(e) => {
                eprintln!("Error: {e}");
                1
            }
        }
    };
    let code = s.quit.unwrap_or(code);
    s.close();
    code
}

fn interactive(s: &mut Session, history: Option<PathBuf>) -> i32 {
    println!(
        "hiqlite shell {} connected to {}. Enter \".help\" for usage hints.",
        env!("CARGO_PKG_VERSION"),
        s.url
    );
    match s.wait(s.client.nodes(), false) {
        Ok(nodes) => {
            let leader = nodes
                .iter()
                .find(|n| n.leader)
                .map_or("none known".to_string(), |l| format!("node {} at {}", l.id, l.api_addr));
            let n = nodes.len();
            println!("cluster of {n} node{}, leader: {leader}", if n == 1 { "" } else { "s" });
            s.refresh_names();
        }
        // The session starts anyway: the cluster may come up while the user types.
        Err(e) => eprintln!("Warning: {e}"),
    }
    let config = Config::builder()
        .history_ignore_space(true)
        .history_ignore_dups(true)
        .and_then(|b| b.max_history_size(10_000))
        .map(|b| b.completion_type(CompletionType::List).auto_add_history(false).build());
    let mut rl = match config.and_then(Editor::<editor::ShellHelper, DefaultHistory>::with_config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("Error: cannot start the line editor: {e}");
            return 1;
        }
    };
    rl.set_helper(Some(editor::ShellHelper::new(s.names.clone())));
    let hist = editor::history_path(history);
    if let Some(h) = &hist {
        // A missing file is a first run.
        let _ = rl.load_history(h);
    }
    loop {
        let prompt = if s.in_transaction() { "hiqlite*> " } else { "hiqlite> " };
        match rl.readline(prompt) {
            Ok(text) => {
                if !text.trim().is_empty() {
                    let _ = rl.add_history_entry(text.trim_end());
                    // Appended entry by entry: a killed shell keeps its history, and two shells
                    // at once both add to the file.
                    if let Some(h) = &hist {
                        if let Err(e) = rl.append_history(h) {
                            eprintln!("Warning: cannot save the history to {}: {e}", h.display());
                        }
                    }
                }
                let mut r = Runner::new(s, script::Mode { batch: false, bail: false, lines: None });
                r.text(&text);
                let _ = s.out.flush();
                if s.quit.is_some() {
                    break;
                }
            }
            // Ctrl-C: drop the entry, keep the session.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("Error: {e}");
                break;
            }
        }
    }
    let _ = std::io::stdout().flush();
    0
}
