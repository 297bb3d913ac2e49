//! `strata repl` driven as people and scripts drive it: statements and meta commands piped
//! on stdin (formats, errors with a caret, exit codes), and a real terminal through tmux
//! (typing, Tab completion, multi-line statements, Ctrl-C cancelling a long query, Ctrl-D,
//! history across sessions), on the embedded engine over a local and an HDFS lake, and with
//! `--connect` against the machine's PostgreSQL and a `strata serve`.
//!
//! The lake is the small fixture warehouse (fixtures/serve/warehouse): `raw.raw_orders`
//! (seed), `silver.recent_orders` (view) and `gold.orders` (Delta table). tmux, PostgreSQL
//! (STRATA_TEST_PG) and HDFS come from `scripts/test`; a missing one fails, never skips.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{LakeKind, Project};

/// The local warehouse, built once and only read by the tests.
fn warehouse() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| Project::warehouse(LakeKind::Local))
}

/// Runs `strata <args>` in `dir` with `stdin` piped in.
fn piped(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(dir)
        .env_remove("STRATA_LAKE")
        .env_remove("STRATA_PROJECT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a piped session that must succeed; its stdout.
fn piped_ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = piped(dir, args, stdin);
    assert!(
        out.status.success(),
        "strata {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Whether `\d` output lists `column` with type `ty`.
fn described(out: &str, column: &str, ty: &str) -> bool {
    out.lines().any(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        cells.len() == 3 && cells[0] == column && cells[1] == ty
    })
}

fn pg_target() -> String {
    let target = std::env::var("STRATA_TEST_PG")
        .expect("STRATA_TEST_PG names the test PostgreSQL (scripts/test sets it)");
    assert!(!target.is_empty(), "STRATA_TEST_PG is empty");
    target
}

// ---------------------------------------------------------------------------------------------
// Piped stdin

#[test]
fn piped_statements_and_meta_commands_print_results() {
    let project = warehouse();
    let out = piped_ok(
        project.dir.path(),
        &["repl"],
        "SELECT order_id, customer, amount, NULL AS missing\n  FROM gold.orders\n  ORDER BY order_id;\n\
         \\dt\n\\dt gold.*\n\\dn\n\\l\n\\d gold.orders\n\\d recent_orders\n\\history gold.orders\n",
    );
    assert!(
        out.contains(
            " order_id | customer | amount | missing\n\
             ----------+----------+--------+---------\n\
             \x20       1 | Ada      | 100.50 | NULL\n\
             \x20       2 | Grace    |  50.25 | NULL\n\
             (2 rows)\n"
        ),
        "numbers right-aligned, NULL shown:\n{out}"
    );
    for listed in [
        " gold    | orders        | table",
        " silver  | recent_orders | view",
        " raw     | raw_orders    | table",
        " _strata | runs          | table",
    ] {
        assert!(out.contains(listed), "\\dt lists {listed}:\n{out}");
    }
    assert!(
        out.contains(
            " Schema | Name   | Type\n--------+--------+-------\n gold   | orders | table\n(1 row)"
        ),
        "\\dt gold.* lists gold only:\n{out}"
    );
    for schema in ["bronze", "silver", "gold", "_strata", "public"] {
        assert!(
            out.contains(&format!("\n {schema}\n")),
            "\\dn lists {schema}:\n{out}"
        );
    }
    assert!(out.contains(" strata | "), "\\l lists the catalog:\n{out}");
    assert!(out.contains("Table \"gold.orders\""), "{out}");
    assert!(
        described(&out, "amount", "numeric(12,2)") && described(&out, "order_id", "bigint"),
        "\\d shows PostgreSQL's type names:\n{out}"
    );
    assert!(
        out.contains("Delta table: version 0, 1 file, at file://"),
        "\\d shows the Delta version and files:\n{out}"
    );
    assert!(out.contains("View \"silver.recent_orders\""), "{out}");
    assert!(
        out.contains(" version | committed_at")
            && out.contains("\n       0 | 20")
            && out.contains("| WRITE"),
        "\\history lists the versions:\n{out}"
    );
}

#[test]
fn piped_formats_expanded_output_files_and_includes() {
    let project = warehouse();
    let scratch = tempfile::tempdir().unwrap();
    let saved = scratch.path().join("saved.csv");
    let script = scratch.path().join("script.sql");
    std::fs::write(
        &script,
        "-- an included script\nSELECT count(*) AS paid_orders\nFROM silver.recent_orders;\n\\pset format aligned\n",
    )
    .unwrap();
    let out = piped_ok(
        project.dir.path(),
        &["repl"],
        &format!(
            "\\pset format csv\nSELECT order_id, customer, paid FROM gold.orders ORDER BY 1;\n\
             \\pset format json\nSELECT order_id, amount, paid, customer FROM gold.orders ORDER BY 1;\n\
             \\pset format markdown\nSELECT order_id, customer FROM gold.orders ORDER BY 1;\n\
             \\pset format aligned\n\\x\nSELECT order_id, customer FROM gold.orders WHERE order_id = 1;\n\\x off\n\
             \\o {}\n\\pset format csv\nSELECT customer FROM gold.orders ORDER BY 1;\n\\o\n\\pset format aligned\n\
             \\i {}\n\\timing on\nSELECT 1 AS one;\n\\explain SELECT * FROM gold.orders\n\\?\n",
            saved.display(),
            script.display()
        ),
    );
    assert!(
        out.contains("order_id,customer,paid\n1,Ada,true\n2,Grace,false\n"),
        "csv:\n{out}"
    );
    assert!(
        out.contains(
            "[{\"order_id\":1,\"amount\":100.50,\"paid\":true,\"customer\":\"Ada\"},\n\
             {\"order_id\":2,\"amount\":50.25,\"paid\":false,\"customer\":\"Grace\"}]\n"
        ),
        "json:\n{out}"
    );
    assert!(
        out.contains("| order_id | customer |\n|---:|---|\n| 1 | Ada |\n| 2 | Grace |\n"),
        "markdown:\n{out}"
    );
    assert!(
        out.contains("-[ RECORD 1 ]") && out.contains("order_id | 1\ncustomer | Ada\n"),
        "expanded:\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap(),
        "customer\nAda\nGrace\n",
        "\\o sends results to the file"
    );
    assert!(
        !out.contains("customer\nAda\nGrace"),
        "and not to stdout:\n{out}"
    );
    assert!(
        out.contains(" paid_orders\n-------------\n           1\n"),
        "\\i:\n{out}"
    );
    assert!(out.contains("Time: "), "\\timing:\n{out}");
    assert!(
        out.contains("physical_plan") && out.contains("DeltaScan"),
        "\\explain shows the plan:\n{out}"
    );
    assert!(
        out.contains("\\history name"),
        "\\? lists the commands:\n{out}"
    );
}

#[test]
fn piped_errors_point_at_the_position_and_fail_the_exit_code() {
    let project = warehouse();
    let out = piped(
        project.dir.path(),
        &["repl"],
        "SELECT 1 AS before;\nSELECT order_id\nFROM gold.orders FORM x;\nSELECT nope\n  FROM gold.orders;\n\\nope\nSELECT 2 AS after;\nSELECT 3 AS unterminated",
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a failed statement fails the run");
    assert!(
        stdout.contains(" before\n")
            && stdout.contains(" after\n")
            && stdout.contains(" unterminated\n"),
        "statements after an error still run, and a last one without ; too:\n{stdout}"
    );
    assert!(
        stderr.contains(
            "stdin:2: ERROR: syntax error: Expected: end of statement, found: x at Line: 2, Column: 23\n\
             LINE 2: FROM gold.orders FORM x\n\
             \x20                             ^\n"
        ),
        "syntax errors show the line and a caret:\n{stderr}"
    );
    assert!(
        stderr.contains("stdin:4: ERROR: Schema error: No field named nope.")
            && stderr.contains("LINE 1: SELECT nope\n               ^"),
        "planning errors point at the column:\n{stderr}"
    );
    assert!(
        stderr.contains("stdin:6: ERROR: invalid command \\nope"),
        "{stderr}"
    );
    let ok = piped(project.dir.path(), &["repl"], "SELECT 1;\n");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
}

#[test]
fn piped_format_flag_and_a_bare_strata_without_a_terminal() {
    let project = warehouse();
    let out = piped_ok(
        project.dir.path(),
        &["repl", "--format", "csv"],
        "select 1 as one; select 'a;b' as two;",
    );
    assert_eq!(out, "one\n1\ntwo\na;b\n");
    let bare = piped(project.dir.path(), &[], "select 1;");
    assert!(!bare.status.success());
    assert!(
        text(&bare.stdout).contains("Usage: strata"),
        "{}",
        text(&bare.stdout)
    );
}

/// The embedded backend reads tables at a version as `strata sql` and the server do.
#[test]
fn piped_time_travel_reads_a_table_at_a_version() {
    let project = warehouse();
    let out = piped(
        project.dir.path(),
        &["repl", "--format", "csv"],
        "SELECT count(*) AS n FROM gold.orders VERSION AS OF 0;\n\
         SELECT count(*) AS n FROM gold.orders VERSION AS OF 5;\n\
         SET strata.as_of_run = 'no-such-run';\n",
    );
    assert_eq!(text(&out.stdout), "n\n2\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gold.orders has no version 5: the latest is 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no run \"no-such-run\" in _strata.runs"),
        "{stderr}"
    );
}

#[test]
fn piped_session_on_an_hdfs_lake() {
    let project = Project::warehouse(LakeKind::Hdfs);
    let out = piped_ok(
        project.dir.path(),
        &["repl"],
        "SELECT sum(amount) AS total FROM gold.orders;\n\\dt gold.*\n\\d gold.orders\n\\history gold.orders\n",
    );
    assert!(out.contains(" total\n--------\n 150.75\n"), "{out}");
    assert!(out.contains(" gold   | orders | table"), "{out}");
    assert!(
        out.contains(&format!(
            "Delta table: version 0, 1 file, at {}/gold/orders",
            project.lake_root
        )),
        "{out}"
    );
    assert!(out.contains("| WRITE"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// --connect

#[test]
fn connect_to_postgres() {
    let project = warehouse();
    let target = pg_target();
    let out = piped(
        project.dir.path(),
        &["repl", "--connect", &target],
        "SELECT 1 AS one, NULL::int AS n, 2.5::numeric AS d, 'x' AS t;\n\\dn\n\\l\nSELECT 1 FORM x;\n\\history public.t\n",
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains(
            " one | n    | d   | t\n-----+------+-----+---\n   1 | NULL | 2.5 | x\n(1 row)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("\n public\n"), "\\dn:\n{stdout}");
    assert!(stdout.contains("\n test\n"), "\\l:\n{stdout}");
    assert!(
        stderr.contains(
            "ERROR: syntax error at or near \"x\"\nLINE 1: SELECT 1 FORM x\n                      ^"
        ),
        "PostgreSQL's error position becomes a caret:\n{stderr}"
    );
    assert!(stderr.contains("only the embedded engine"), "{stderr}");
    assert!(!out.status.success());
}

/// A `strata serve` on a free port, stopped when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(project: &Project) -> Server {
        let mut child = project
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().to_string();
                    }
                }
                _ => panic!("strata serve did not print `listening on <addr>`"),
            }
        };
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn connect_to_strata_serve() {
    let project = warehouse();
    let server = Server::start(project);
    let url = format!("postgres://strata@{}/strata", server.addr);
    let out = piped_ok(
        project.dir.path(),
        &["repl", "--connect", &url],
        "SELECT order_id, amount, customer FROM gold.orders ORDER BY 1;\n\\dt\n\\d gold.orders\n",
    );
    assert!(
        out.contains(
            " order_id | amount | customer\n\
             ----------+--------+----------\n\
             \x20       1 | 100.50 | Ada\n\
             \x20       2 |  50.25 | Grace\n"
        ),
        "{out}"
    );
    assert!(out.contains(" silver  | recent_orders | view"), "{out}");
    assert!(
        described(&out, "amount", "numeric(12,2)") && described(&out, "order_id", "bigint"),
        "\\d over the wire shows the same type names:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// A terminal (tmux)

/// The REPL in a detached tmux session of 120x40 on a socket of its own; the server is
/// killed when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn start(dir: &Path, history: &Path, args: &[&str]) -> Terminal {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "strata-repl-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut command = vec![
            "env".to_string(),
            "-u".into(),
            "STRATA_LAKE".into(),
            "-u".into(),
            "STRATA_PROJECT_DIR".into(),
            format!("STRATA_HISTORY={}", history.display()),
            env!("CARGO_BIN_EXE_strata").to_string(),
        ];
        command.extend(args.iter().map(|a| a.to_string()));
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", "-s", "repl", "-c"])
            .arg(dir)
            .args(&command)
            .status()
            .expect("tmux runs (scripts/test installs it)");
        assert!(status.success(), "tmux new-session failed");
        let terminal = Terminal { socket };
        terminal.wait_until("the prompt", at_prompt, Duration::from_secs(60));
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    /// Types `text` literally (a trailing `;` would end tmux's command: escape it).
    fn type_text(&self, text: &str) {
        let escaped = match text.strip_suffix(';') {
            Some(head) => format!("{head}\\;"),
            None => text.to_string(),
        };
        assert!(
            self.tmux(&["send-keys", "-t", "repl", "-l", &escaped])
                .status
                .success()
        );
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "repl"];
        args.extend(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn screen(&self) -> String {
        text(&self.tmux(&["capture-pane", "-p", "-t", "repl"]).stdout)
    }

    /// Waits until the screen shows `expected`; the screen then.
    fn wait_for(&self, expected: &str) -> String {
        self.wait_until(expected, |s| s.contains(expected), Duration::from_secs(60))
    }

    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {what:?} within {timeout:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types a line (if any), presses Enter, and waits for the next prompt.
    fn run(&self, line: &str) -> String {
        if !line.is_empty() {
            self.type_text(line);
            self.wait_until(
                "the typed line",
                |s| last_line(s).ends_with(line.trim()),
                Duration::from_secs(20),
            );
        }
        self.keys(&["Enter"]);
        self.wait_until("the next prompt", at_prompt, Duration::from_secs(60))
    }

    /// Ctrl-C at the prompt: the line is dropped.
    fn drop_line(&self) {
        self.keys(&["C-c"]);
        self.wait_until("an empty prompt", at_prompt, Duration::from_secs(10));
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", "repl"]).status.success()
    }

    fn clear(&self) {
        self.keys(&["C-l"]);
        self.wait_until(
            "a cleared screen",
            |s| s.trim() == "strata>",
            Duration::from_secs(10),
        );
    }
}

/// The screen's last non-blank line.
fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
}

/// Whether the shell waits at an empty prompt.
fn at_prompt(screen: &str) -> bool {
    last_line(screen) == "strata>"
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn history_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/strata/history");
    (dir, path)
}

#[test]
fn terminal_typing_completion_and_meta_commands() {
    let project = warehouse();
    let (_keep, history) = history_file();
    // `strata` alone in a terminal opens the shell.
    let term = Terminal::start(project.dir.path(), &history, &[]);

    let screen = term.run("SELECT customer, amount FROM gold.orders ORDER BY 1;");
    assert!(
        screen.contains(" customer | amount\n----------+--------\n Ada      | 100.50\n Grace    |  50.25\n(2 rows)"),
        "{screen}"
    );

    // A statement over several lines runs once it ends with `;`.
    term.clear();
    term.type_text("SELECT count(*) AS n");
    term.keys(&["Enter"]);
    let screen = term.run("FROM gold.orders;");
    assert!(screen.contains(" n\n---\n 2\n(1 row)"), "{screen}");

    // Tab completes a table name, then a column after an alias and a dot.
    term.clear();
    term.type_text("SELECT * FROM gold.ord");
    term.keys(&["Tab"]);
    term.wait_for("SELECT * FROM gold.orders");
    term.type_text(" o WHERE o.cus");
    term.keys(&["Tab"]);
    term.wait_for("SELECT * FROM gold.orders o WHERE o.customer");
    let screen = term.run(" = 'Grace';");
    assert!(
        screen.contains("Grace") && screen.contains("(1 row)"),
        "{screen}"
    );

    // Several candidates: the common part, then the list on a second Tab.
    term.clear();
    term.type_text("SELECT o.am FROM gold.orders o");
    term.keys(&["C-a", "M-f", "M-f", "M-f", "Tab"]);
    term.wait_for("SELECT o.amount FROM gold.orders o");
    term.keys(&["Tab"]);
    let screen = term.wait_for("amount_float");
    assert!(screen.contains("o.amount "), "{screen}");
    term.drop_line();

    // Meta commands complete too, then run.
    term.clear();
    term.type_text("\\hist");
    term.keys(&["Tab"]);
    term.wait_for("\\history");
    term.drop_line();
    let screen = term.run("\\dt gold.*");
    assert!(screen.contains(" gold   | orders | table"), "{screen}");
    term.clear();
    let screen = term.run("\\d gold.orders");
    assert!(
        screen.contains("Table \"gold.orders\"")
            && screen.contains("Delta table: version 0, 1 file"),
        "{screen}"
    );

    // Wide results fit the terminal, with a note.
    term.clear();
    let screen = term.run("SELECT repeat('x', 300) AS wide, 1 AS n;");
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with(" xxx") && l.contains("x… | 1")),
        "the row fits on one line:\n{screen}"
    );
    assert!(screen.contains("\\x shows them whole"), "{screen}");

    // Long results are capped, with the total count.
    term.clear();
    let screen = term.run("SELECT * FROM generate_series(1, 1000);");
    assert!(
        screen.contains("(1000 rows, first 40 shown; \\pset maxrows 0 shows all)"),
        "{screen}"
    );

    // Errors show the caret on screen too, and the shell goes on.
    term.clear();
    let screen = term.run("SELECT 1 FORM x;");
    assert!(
        screen.contains("LINE 1: SELECT 1 FORM x\n                      ^"),
        "{screen}"
    );
    term.keys(&["C-d"]);
    term.wait_until(
        "the shell to exit",
        |_| !term.alive(),
        Duration::from_secs(20),
    );
}

#[test]
fn terminal_ctrl_c_cancels_a_long_query_and_the_shell_goes_on() {
    let project = warehouse();
    let (_keep, history) = history_file();
    let term = Terminal::start(project.dir.path(), &history, &["repl"]);
    // Billions of rows: minutes of work for a debug build.
    term.type_text("SELECT sum(value) AS total FROM generate_series(1, 5000000000);");
    term.keys(&["Enter"]);
    std::thread::sleep(Duration::from_secs(3));
    let screen = term.screen();
    assert!(
        !screen.contains("total") || !screen.contains("(1 row)"),
        "the query is still running after 3s:\n{screen}"
    );
    let pressed = Instant::now();
    term.keys(&["C-c"]);
    term.wait_until(
        "the cancel",
        |s| s.contains("query cancelled") && at_prompt(s),
        Duration::from_secs(5),
    );
    assert!(pressed.elapsed() < Duration::from_secs(5));
    let screen = term.run("SELECT 40 + 2 AS answer;");
    assert!(screen.contains(" answer\n--------\n     42\n"), "{screen}");
    // Ctrl-C at the prompt drops the line and keeps the shell.
    term.type_text("SELECT 'never run'");
    term.wait_for("SELECT 'never run'");
    term.drop_line();
    let screen = term.run("SELECT 'still here' AS status;");
    assert!(
        screen.contains(" still here\n") && !screen.contains("never run\n"),
        "{screen}"
    );
}

#[test]
fn terminal_history_persists_across_sessions_and_ctrl_d_exits() {
    let project = warehouse();
    let (_keep, history) = history_file();
    let first = Terminal::start(project.dir.path(), &history, &["repl"]);
    first.run("SELECT 'remembered' AS word;");
    first.type_text("SELECT 1 AS a,");
    first.keys(&["Enter"]);
    first.run("  2 AS b;");
    first.keys(&["C-d"]);
    first.wait_until(
        "the shell to exit",
        |_| !first.alive(),
        Duration::from_secs(20),
    );
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("SELECT 'remembered' AS word;"), "{saved}");

    let second = Terminal::start(project.dir.path(), &history, &["repl"]);
    second.keys(&["Up"]);
    second.wait_for("strata> SELECT 1 AS a,\n  2 AS b;");
    second.drop_line();
    // Reverse search finds the older entry.
    second.keys(&["C-r"]);
    second.type_text("rememb");
    second.wait_for("SELECT 'remembered' AS word;");
    second.keys(&["Enter"]);
    second.wait_until(
        "the recalled statement's result",
        |s| s.contains(" remembered\n") && at_prompt(s),
        Duration::from_secs(30),
    );
    second.type_text("\\q");
    second.keys(&["Enter"]);
    second.wait_until(
        "the shell to exit",
        |_| !second.alive(),
        Duration::from_secs(20),
    );
}

#[test]
fn terminal_connect_cancels_on_the_server() {
    let project = warehouse();
    let (_keep, history) = history_file();
    let target = pg_target();
    let term = Terminal::start(
        project.dir.path(),
        &history,
        &["repl", "--connect", &target],
    );
    term.type_text("SELECT pg_sleep(60);");
    term.keys(&["Enter"]);
    std::thread::sleep(Duration::from_secs(2));
    term.keys(&["C-c"]);
    term.wait_until(
        "the cancel",
        |s| s.contains("query cancelled") && at_prompt(s),
        Duration::from_secs(10),
    );
    let screen = term.run("SELECT 'after' AS state;");
    assert!(screen.contains(" after\n"), "{screen}");
    // Completion asks the server's catalog.
    let table = format!("repl_probe_{}", std::process::id());
    term.clear();
    term.run(&format!("CREATE TABLE {table} (id int, label text);"));
    term.clear();
    term.type_text("SELECT p.la FROM public.repl_pro");
    term.keys(&["Tab"]);
    term.wait_for(&format!("SELECT p.la FROM public.{table}"));
    term.type_text(" p");
    term.keys(&["C-a", "M-f", "M-f", "M-f", "Tab"]);
    term.wait_for(&format!("SELECT p.label FROM public.{table} p"));
    term.keys(&["End"]);
    let screen = term.run(";");
    assert!(screen.contains(" label\n-------\n(0 rows)"), "{screen}");
    term.run(&format!("DROP TABLE {table};"));
}
