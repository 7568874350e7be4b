//! Output shared by the commands: the `--format` choice, rustc-like diagnostic lines, plain-text
//! tables, UTC times, and writing to stdout when the reader may stop early.

use botflow_flow::FileDiagnostic;
use std::fmt::Write as _;
use std::io::Write as _;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Lines for people: rustc-like diagnostics, tables and a summary line.
    #[default]
    Human,
    /// One JSON document, for pipelines.
    Json,
}

/// Appends one rustc-like line per diagnostic (`file:pointer: error[code]: message`, a hint
/// below it where one helps): the one format of `validate` and `push`.
pub(crate) fn push_diagnostic_lines(out: &mut String, diagnostics: &[FileDiagnostic]) {
    for entry in diagnostics {
        out.push_str(&botflow_flow::render_human(&entry.file, &entry.diagnostic));
        out.push('\n');
    }
}

/// `one` when `n` is 1, else `many`.
pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `"3 errors"`, `"1 error"`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// Writes `text` to stdout. A reader that stopped early (`| head`) is not an error: the verdict
/// of the command stands and there is nobody left to tell.
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Pretty JSON of `value` with a final newline.
pub(crate) fn json_text(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    text.push('\n');
    text
}

/// A plain-text table: a header row and left-aligned columns two spaces apart.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            match i + 1 == row.len() {
                true => line.push_str(cell),
                false => {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2026-11-30 20:34:19 UTC` for milliseconds since the Unix epoch.
pub(crate) fn utc_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_match_known_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_798_761_599_000), "2026-12-31 23:59:59 UTC");
        assert_eq!(utc_time(1_767_225_600_123), "2026-01-01 00:00:00 UTC");
    }

    #[test]
    fn tables_align_columns_by_their_widest_cell() {
        let text = table(
            &["NAME", "ID"],
            &[
                vec!["Red sneakers restock".into(), "t-1".into()],
                vec!["Sale".into(), "t-22".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME                  ID\nRed sneakers restock  t-1\nSale                  t-22\n"
        );
    }
}
