//! `strata repl`: an interactive SQL shell over the lake (or, with `--connect`, over any
//! PostgreSQL server), shaped like datafusion-cli: the loop here, one file per concern —
//! `backend` (what statements run on: `embedded`, `remote`), `input` (statement splitting),
//! `command` (meta commands), `helper` and `complete` (line editing, completion), `render`
//! (output formats), `history` (where history lives), `error`.
//!
//! In a terminal it reads lines with rustyline; otherwise it reads statements from stdin and
//! prints their results, continuing past errors and reporting failure at the end.

pub mod backend;
mod command;
pub mod complete;
mod embedded;
pub mod error;
mod helper;
pub mod history;
pub mod input;
mod interrupt;
mod remote;

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, EditMode, Editor};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

pub use crate::sql::render::Format;
pub use backend::Backend;
pub use embedded::Embedded;
pub use error::ReplError;
pub use remote::Remote;

use crate::sql::render::{self, Expanded, Style};
use crate::sql::results::ResultSet;
use interrupt::CtrlC;

/// Rows of a long result shown in aligned output in a terminal (`\pset maxrows`).
const TERMINAL_MAX_ROWS: usize = 40;
/// Entries kept in the history file.
const HISTORY_SIZE: usize = 10_000;

/// How the shell starts.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// Where relative paths in quotes complete from (the project directory).
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// Runs the shell on `backend` until `\q`, Ctrl-D or the end of stdin. Blocks: call it
/// outside the runtime's workers (`tokio::task::block_in_place`), since it blocks on
/// `runtime` for each statement. Returns whether every statement and command succeeded.
pub fn run(
    backend: Arc<dyn Backend>,
    options: Options,
    runtime: Handle,
) -> Result<bool, ReplError> {
    let interactive = std::io::stdin().is_terminal();
    let mut shell = Shell {
        backend,
        runtime,
        color: interactive && render::color_on_stdout(),
        format: options.format,
        expanded: Expanded::Off,
        null: "NULL".to_string(),
        maxrows: if interactive { TERMINAL_MAX_ROWS } else { 0 },
        timing: false,
        output: None,
        failed: false,
        stale: Arc::new(AtomicBool::new(false)),
        interrupts: None,
    };
    if interactive {
        shell.interactive(options.dir)?;
    } else {
        shell.script(std::io::stdin().lock(), "stdin")?;
    }
    Ok(!shell.failed)
}

pub(crate) struct Shell {
    backend: Arc<dyn Backend>,
    runtime: Handle,
    color: bool,
    format: Format,
    expanded: Expanded,
    null: String,
    /// Rows kept of a long result in aligned output; 0 keeps all.
    maxrows: usize,
    timing: bool,
    /// `\o file`: results go there instead of stdout.
    output: Option<BufWriter<std::fs::File>>,
    failed: bool,
    stale: Arc<AtomicBool>,
    /// In a terminal: Ctrl-C cancels the running statement.
    interrupts: Option<CtrlC>,
}

impl Shell {
    fn interactive(&mut self, dir: PathBuf) -> Result<(), ReplError> {
        // From now on SIGINT cancels the running query instead of ending the process (at the
        // prompt the terminal is raw, so Ctrl-C reaches rustyline as a key).
        self.interrupts = Some(
            CtrlC::install().map_err(|e| ReplError::Usage(format!("cannot catch Ctrl-C: {e}")))?,
        );
        let config = Config::builder()
            .edit_mode(EditMode::Emacs)
            .completion_type(CompletionType::List)
            .history_ignore_space(true)
            .max_history_size(HISTORY_SIZE)?
            .auto_add_history(false)
            .build();
        let mut editor: Editor<helper::ReplHelper, FileHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(helper::ReplHelper::new(
            Arc::clone(&self.backend),
            self.runtime.clone(),
            dir,
            Arc::clone(&self.stale),
        )));
        let history = history::location();
        if let Some(path) = &history {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| ReplError::File {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            if path.exists() {
                editor.load_history(path)?;
            }
        }
        println!(
            "strata {} on {}. \\? for help, \\q or Ctrl-D to quit.",
            env!("CARGO_PKG_VERSION"),
            self.backend.describe()
        );
        let prompt = ("strata> ", "\x1b[1;32mstrata>\x1b[0m ");
        loop {
            let line = match editor.readline(&prompt) {
                Ok(line) => line,
                // Ctrl-C at the prompt drops the line being typed.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            };
            if line.trim().is_empty() {
                continue;
            }
            editor.add_history_entry(line.trim_end())?;
            if let Some(path) = &history
                && let Err(e) = editor.append_history(path)
            {
                self.report(
                    &ReplError::Usage(format!("cannot save history to {}: {e}", path.display())),
                    None,
                    None,
                );
            }
            if self.typed(&line) == Flow::Quit {
                break;
            }
        }
        Ok(())
    }

    /// Runs what was typed at the prompt: a meta command, or complete statements.
    fn typed(&mut self, text: &str) -> Flow {
        let trimmed = text.trim();
        if input::is_quit(trimmed) {
            return Flow::Quit;
        }
        if trimmed.starts_with('\\') {
            return self.meta_line(trimmed, None);
        }
        let split = input::split(text);
        for statement in &split.statements {
            self.statement(&statement.text, None);
        }
        if split.rest_pending {
            self.statement(text[split.rest..].trim(), None);
        }
        Flow::Continue
    }

    /// Runs a script (stdin, `\i file`): meta commands on their own lines, statements ending
    /// with `;` (an unterminated last statement runs at the end). Errors are reported with the
    /// script's line and the script goes on.
    fn script(&mut self, reader: impl BufRead, origin: &str) -> Result<Flow, ReplError> {
        let mut buffer = String::new();
        // Line of the script where `buffer` starts.
        let mut first_line = 1;
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| ReplError::File {
                path: PathBuf::from(origin),
                source,
            })?;
            if buffer.trim().is_empty() {
                buffer.clear();
                first_line = n + 1;
                if line.trim_start().starts_with('\\') {
                    if self.meta_line(line.trim(), Some((origin, n + 1))) == Flow::Quit {
                        return Ok(Flow::Quit);
                    }
                    continue;
                }
            }
            buffer.push_str(&line);
            buffer.push('\n');
            let split = input::split(&buffer);
            for statement in &split.statements {
                self.statement(
                    &statement.text,
                    Some((origin, first_line + statement.line - 1)),
                );
            }
            first_line += buffer[..split.rest].matches('\n').count();
            buffer.drain(..split.rest);
        }
        if input::split(&buffer).rest_pending {
            buffer.push(';');
            for statement in input::split(&buffer).statements {
                self.statement(
                    &statement.text,
                    Some((origin, first_line + statement.line - 1)),
                );
            }
        }
        Ok(Flow::Continue)
    }

    fn meta_line(&mut self, line: &str, origin: Option<(&str, usize)>) -> Flow {
        match command::parse(line).and_then(|meta| self.meta(meta)) {
            Ok(flow) => flow,
            Err(e) => {
                self.report(&e, None, origin);
                Flow::Continue
            }
        }
    }

    fn statement(&mut self, sql: &str, origin: Option<(&str, usize)>) {
        if let Err(e) = self.run_sql(sql) {
            self.report(&e, Some(sql), origin);
        }
    }

    /// Runs one statement and shows its result; in a terminal, Ctrl-C cancels it.
    fn run_sql(&mut self, sql: &str) -> Result<(), ReplError> {
        let keep = (self.format.for_people() && self.maxrows > 0).then_some(self.maxrows);
        let started = Instant::now();
        let watch = self.interrupts.as_ref().map(CtrlC::watch);
        let cancel = watch
            .as_ref()
            .map_or_else(CancellationToken::new, |w| w.token.clone());
        let result = self.runtime.block_on(self.backend.run(sql, keep, &cancel));
        drop(watch);
        // A statement may have created or dropped tables: completion reloads the catalog.
        self.stale.store(true, Ordering::Relaxed);
        if let Some(set) = result? {
            self.show(&set)?;
        }
        if self.timing {
            self.say(&format!(
                "Time: {:.3} ms",
                started.elapsed().as_secs_f64() * 1000.0
            ));
        }
        Ok(())
    }

    /// Writes a result where results go, in the current format.
    fn show(&mut self, set: &ResultSet) -> Result<(), ReplError> {
        let to_terminal = self.output.is_none() && std::io::stdout().is_terminal();
        let style = Style {
            format: self.format,
            expanded: self.expanded,
            width: to_terminal.then(render::terminal_width).flatten(),
            color: to_terminal && self.color,
            null: self.null.clone(),
        };
        match self.output.as_mut() {
            Some(file) => {
                render::render(file, set, &style)?;
                file.flush()?;
            }
            None => {
                let mut out = std::io::stdout().lock();
                render::render(&mut out, set, &style)?;
                out.flush()?;
            }
        }
        Ok(())
    }

    /// A message for the person at the shell (not part of any result).
    fn say(&self, text: &str) {
        println!("{text}");
    }

    fn report(
        &mut self,
        error: &ReplError,
        statement: Option<&str>,
        origin: Option<(&str, usize)>,
    ) {
        self.failed = true;
        let (red, reset) = match self.color && std::io::stderr().is_terminal() {
            true => ("\x1b[1;31m", "\x1b[0m"),
            false => ("", ""),
        };
        let at = origin
            .map(|(file, line)| format!("{file}:{line}: "))
            .unwrap_or_default();
        let mut text = format!("{at}{red}ERROR:{reset} {error}");
        if let (
            ReplError::Query {
                position: Some(position),
                ..
            },
            Some(statement),
        ) = (error, statement)
            && let Some(pointer) = error::caret(statement, *position)
        {
            text.push('\n');
            text.push_str(&pointer);
        }
        eprintln!("{text}");
    }
}
