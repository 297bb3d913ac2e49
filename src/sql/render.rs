//! Showing results: aligned tables that fit the terminal (psql's look), expanded records,
//! CSV, JSON and Markdown.

use std::io::{self, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::results::{Kind, ResultSet};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, numbers to the right (for people)
    #[default]
    #[value(alias = "table")]
    Aligned,
    /// CSV with a header line
    Csv,
    /// A JSON array of objects
    Json,
    /// A Markdown table
    Markdown,
}

impl Format {
    /// Formats for people: long results are capped and wide ones fitted to the terminal.
    pub fn for_people(self) -> bool {
        matches!(self, Format::Aligned)
    }
}

/// `\x`: one line per column instead of one per row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expanded {
    #[default]
    Off,
    On,
    /// Expanded when the table would not fit the terminal.
    Auto,
}

/// How results are drawn.
#[derive(Debug, Clone)]
pub struct Style {
    pub format: Format,
    pub expanded: Expanded,
    /// The terminal's width, when output goes to one.
    pub width: Option<usize>,
    /// ANSI colors (a terminal, and `NO_COLOR` unset).
    pub color: bool,
    /// How NULL is shown in aligned and Markdown output.
    pub null: String,
}

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";
/// Narrowest a column is squeezed to before columns are left out.
const MIN_COLUMN: usize = 4;

impl Style {
    /// How a one-shot command (`strata sql`, `explore`) draws results on stdout: whole, in
    /// color only on a terminal with `NO_COLOR` unset.
    pub fn for_stdout(format: Format) -> Self {
        Self {
            format,
            expanded: Expanded::Off,
            width: None,
            color: color_on_stdout(),
            null: "NULL".to_string(),
        }
    }
}

/// Whether stdout takes ANSI colors: a terminal, and `NO_COLOR` unset.
pub fn color_on_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Writes `set` to `out` in `style`.
pub fn render(out: &mut dyn Write, set: &ResultSet, style: &Style) -> io::Result<()> {
    match style.format {
        Format::Aligned => {
            let expanded = match style.expanded {
                Expanded::On => true,
                Expanded::Off => false,
                Expanded::Auto => style.width.is_some_and(|w| natural_width(set, style) > w),
            };
            if expanded {
                expanded_records(out, set, style)?;
            } else {
                aligned(out, set, style)?;
            }
            footer(out, set)
        }
        Format::Csv => csv_rows(out, set),
        Format::Json => json_rows(out, set),
        Format::Markdown => markdown(out, set, style),
    }
}

fn footer(out: &mut dyn Write, set: &ResultSet) -> io::Result<()> {
    let total = set.total_rows;
    let plural = if total == 1 { "" } else { "s" };
    if (set.rows.len() as u64) < total {
        writeln!(
            out,
            "({total} row{plural}, first {} shown; \\pset maxrows 0 shows all)",
            set.rows.len()
        )
    } else {
        writeln!(out, "({total} row{plural})")
    }
}

/// A cell as lines of display text.
fn cell_lines<'a>(value: &'a Option<String>, style: &'a Style) -> Vec<&'a str> {
    match value {
        Some(v) => v.split('\n').map(|l| l.trim_end_matches('\r')).collect(),
        None => vec![style.null.as_str()],
    }
}

fn width_of(text: &str) -> usize {
    text.chars()
        .map(|c| if c == '\t' { 1 } else { c.width().unwrap_or(0) })
        .sum()
}

/// The widest line of each column, headers included.
fn column_widths(set: &ResultSet, style: &Style) -> Vec<usize> {
    set.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            set.rows
                .iter()
                .flat_map(|r| cell_lines(&r[i], style))
                .map(width_of)
                .chain([c.name.width()])
                .max()
                .unwrap_or(0)
        })
        .collect()
}

fn natural_width(set: &ResultSet, style: &Style) -> usize {
    let widths = column_widths(set, style);
    widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1) + 2
}

/// `text` cut to `width` display columns, ending in `…` when cut.
fn fit(text: &str, width: usize) -> String {
    let text = text.replace('\t', " ");
    if text.width() <= width {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

fn pad(text: &str, width: usize, right: bool) -> String {
    let gap = " ".repeat(width.saturating_sub(text.width()));
    if right {
        format!("{gap}{text}")
    } else {
        format!("{text}{gap}")
    }
}

/// Column widths squeezed to `available` display columns: the widest columns give way first;
/// columns that still do not fit are left out. Returns the widths of the columns shown.
fn fit_widths(natural: &[usize], available: usize) -> Vec<usize> {
    let mut shown = natural.len();
    // Separators take 3 columns between cells and 2 at the edges.
    let room = |n: usize| available.saturating_sub(3 * n.saturating_sub(1) + 2);
    while shown > 1 && room(shown) < shown * MIN_COLUMN {
        shown -= 1;
    }
    let widths = &natural[..shown];
    let room = room(shown);
    if widths.iter().sum::<usize>() <= room {
        return widths.to_vec();
    }
    // The largest cap that fits: every column keeps min(its width, cap).
    let mut cap = widths.iter().copied().max().unwrap_or(0);
    while cap > MIN_COLUMN && widths.iter().map(|w| (*w).min(cap)).sum::<usize>() > room {
        cap -= 1;
    }
    widths.iter().map(|w| (*w).min(cap)).collect()
}

fn aligned(out: &mut dyn Write, set: &ResultSet, style: &Style) -> io::Result<()> {
    let natural = column_widths(set, style);
    let widths = match style.width {
        Some(w) => fit_widths(&natural, w),
        None => natural.clone(),
    };
    let shown = widths.len();
    let header: Vec<String> = set.columns[..shown]
        .iter()
        .zip(&widths)
        .map(|(c, w)| {
            let name = fit(&c.name, *w);
            let text = pad(&name, *w, false);
            if style.color {
                format!("{BOLD}{text}{RESET}")
            } else {
                text
            }
        })
        .collect();
    writeln!(out, " {}", header.join(" | ").trim_end())?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    writeln!(out, "{}", rule.join("+"))?;
    for row in &set.rows {
        let lines: Vec<Vec<&str>> = row[..shown].iter().map(|v| cell_lines(v, style)).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for line in 0..height {
            let cells: Vec<String> = (0..shown)
                .map(|i| {
                    let text = lines[i].get(line).copied().unwrap_or("");
                    let right = set.columns[i].kind == Kind::Number;
                    let cell = pad(&fit(text, widths[i]), widths[i], right);
                    if style.color && row[i].is_none() {
                        format!("{DIM}{cell}{RESET}")
                    } else {
                        cell
                    }
                })
                .collect();
            writeln!(out, " {}", cells.join(" | ").trim_end())?;
        }
    }
    let cut_columns = set.columns.len() - shown;
    if cut_columns > 0 {
        let names: Vec<&str> = set.columns[shown..]
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let note = format!(
            "({cut_columns} more column{} not shown, \\x shows all: {})",
            if cut_columns == 1 { "" } else { "s" },
            names.join(", ")
        );
        writeln!(out, "{}", fit(&note, style.width.unwrap_or(usize::MAX)))?;
    }
    if widths.iter().zip(&natural).any(|(w, n)| w < n) {
        writeln!(out, "(values cut; \\x shows them whole)")?;
    }
    Ok(())
}

fn expanded_records(out: &mut dyn Write, set: &ResultSet, style: &Style) -> io::Result<()> {
    let label = set
        .columns
        .iter()
        .map(|c| c.name.width())
        .max()
        .unwrap_or(0);
    let value_width = style
        .width
        .map(|w| w.saturating_sub(label + 3).max(MIN_COLUMN));
    for (n, row) in set.rows.iter().enumerate() {
        let title = format!("-[ RECORD {} ]", n + 1);
        let rule_width = style.width.unwrap_or(label + 20).min(label + 3 + 40);
        writeln!(
            out,
            "{title}{}",
            "-".repeat(rule_width.saturating_sub(title.len()))
        )?;
        for (column, value) in set.columns.iter().zip(row) {
            for (i, line) in cell_lines(value, style).into_iter().enumerate() {
                let name = if i == 0 { column.name.as_str() } else { "" };
                let text = match value_width {
                    Some(w) => fit(line, w),
                    None => line.replace('\t', " "),
                };
                let text = if style.color && value.is_none() {
                    format!("{DIM}{text}{RESET}")
                } else {
                    text
                };
                writeln!(out, "{} | {text}", pad(name, label, false))?;
            }
        }
    }
    Ok(())
}

fn csv_rows(out: &mut dyn Write, set: &ResultSet) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(set.columns.iter().map(|c| c.name.as_str()))?;
    for row in &set.rows {
        writer.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))?;
    }
    writer.flush()
}

fn json_rows(out: &mut dyn Write, set: &ResultSet) -> io::Result<()> {
    let value = |v: &Option<String>, kind: Kind| -> String {
        match (v, kind) {
            (None, _) => "null".to_string(),
            // Only what JSON can hold as a number stays one (not NaN, inf or 1e999).
            (Some(v), Kind::Number)
                if serde_json::from_str::<serde_json::Number>(v)
                    .is_ok_and(|n| n.as_f64().is_some_and(f64::is_finite)) =>
            {
                v.clone()
            }
            (Some(v), Kind::Bool) if v == "true" || v == "false" => v.clone(),
            (Some(v), Kind::Bool) if v == "t" || v == "f" => (v == "t").to_string(),
            (Some(v), Kind::Json) if serde_json::from_str::<serde_json::Value>(v).is_ok() => {
                v.clone()
            }
            (Some(v), _) => serde_json::Value::from(v.as_str()).to_string(),
        }
    };
    write!(out, "[")?;
    for (n, row) in set.rows.iter().enumerate() {
        let fields: Vec<String> = set
            .columns
            .iter()
            .zip(row)
            .map(|(c, v)| {
                format!(
                    "{}:{}",
                    serde_json::Value::from(c.name.as_str()),
                    value(v, c.kind)
                )
            })
            .collect();
        let sep = if n == 0 { "" } else { ",\n" };
        write!(out, "{sep}{{{}}}", fields.join(","))?;
    }
    writeln!(out, "]")
}

fn markdown(out: &mut dyn Write, set: &ResultSet, style: &Style) -> io::Result<()> {
    let escape = |text: &str| text.replace('|', "\\|").replace('\n', "<br>");
    let names: Vec<String> = set.columns.iter().map(|c| escape(&c.name)).collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    let rule: Vec<&str> = set
        .columns
        .iter()
        .map(|c| {
            if c.kind == Kind::Number {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    writeln!(out, "|{}|", rule.join("|"))?;
    for row in &set.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| escape(v.as_deref().unwrap_or(&style.null)))
            .collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}

/// Columns of the terminal on stdout, if stdout is one.
pub fn terminal_width() -> Option<usize> {
    let (_, columns) = console::Term::stdout().size_checked()?;
    (columns > 0).then_some(usize::from(columns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::results::Column;

    fn style(width: Option<usize>) -> Style {
        Style {
            format: Format::Aligned,
            expanded: Expanded::Off,
            width,
            color: false,
            null: "NULL".to_string(),
        }
    }

    fn set() -> ResultSet {
        ResultSet::new(
            vec![
                Column::number("id"),
                Column::text("name"),
                Column::text("note"),
            ],
            vec![
                vec![Some("1".into()), Some("Ada".into()), None],
                vec![Some("22".into()), Some("Grace".into()), Some("a|b".into())],
            ],
        )
    }

    fn shown(set: &ResultSet, style: &Style) -> String {
        let mut out = Vec::new();
        render(&mut out, set, style).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn aligned_tables_right_align_numbers_and_show_null() {
        assert_eq!(
            shown(&set(), &style(None)),
            " id | name  | note\n----+-------+------\n  1 | Ada   | NULL\n 22 | Grace | a|b\n(2 rows)\n"
        );
    }

    #[test]
    fn wide_tables_are_cut_to_the_terminal_with_a_note() {
        let mut wide = set();
        wide.rows[0][2] = Some("x".repeat(200));
        let text = shown(&wide, &style(Some(40)));
        assert!(text.lines().all(|l| l.width() <= 40), "{text}");
        assert!(
            text.contains('…') && text.contains("\\x shows them whole"),
            "{text}"
        );
        let many = ResultSet::new(
            (0..30)
                .map(|i| Column::text(&format!("column_{i}")))
                .collect(),
            vec![(0..30).map(|i| Some(i.to_string())).collect()],
        );
        let text = shown(&many, &style(Some(60)));
        assert!(text.contains("more columns not shown"), "{text}");
        assert!(text.lines().all(|l| l.width() <= 60), "{text}");
    }

    #[test]
    fn capped_results_say_how_many_rows_there_were() {
        let mut capped = set();
        capped.total_rows = 1000;
        assert!(
            shown(&capped, &style(None))
                .ends_with("(1000 rows, first 2 shown; \\pset maxrows 0 shows all)\n")
        );
    }

    #[test]
    fn machine_formats_keep_types_and_nulls() {
        let mut s = style(None);
        s.format = Format::Json;
        assert_eq!(
            shown(&set(), &s),
            "[{\"id\":1,\"name\":\"Ada\",\"note\":null},\n{\"id\":22,\"name\":\"Grace\",\"note\":\"a|b\"}]\n"
        );
        s.format = Format::Csv;
        assert_eq!(shown(&set(), &s), "id,name,note\n1,Ada,\n22,Grace,a|b\n");
        s.format = Format::Markdown;
        assert_eq!(
            shown(&set(), &s),
            "| id | name | note |\n|---:|---|---|\n| 1 | Ada | NULL |\n| 22 | Grace | a\\|b |\n"
        );
    }

    #[test]
    fn expanded_records_list_columns() {
        let mut s = style(None);
        s.expanded = Expanded::On;
        let text = shown(&set(), &s);
        assert!(text.starts_with("-[ RECORD 1 ]"), "{text}");
        assert!(text.contains("name | Grace\n"), "{text}");
    }
}
