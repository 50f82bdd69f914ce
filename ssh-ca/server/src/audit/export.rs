//! Audit records as exported: JSON (the object `jit-ca audit export --json` writes, one per
//! line) and CSV (RFC 4180, with cells that a spreadsheet would run as a formula defused).
//! Pure: the audit page (`/ui/audit.json`, `/ui/audit.csv`) and the CLI both use it.

use serde_json::json;

use super::Record;

/// The CSV header line (with its CRLF).
pub const CSV_HEADER: &str = "seq,time,time_utc,actor,event,details,prev_hash,hash\r\n";

/// A record as one JSON object: `seq`, `time`, `time_utc`, `actor`, `event`, `details` (the
/// stored JSON, parsed; a string when it does not parse), `prev_hash`, `hash`.
pub fn json_value(r: &Record) -> serde_json::Value {
    let details: serde_json::Value = serde_json::from_str(&r.details)
        .unwrap_or_else(|_| serde_json::Value::String(r.details.clone()));
    json!({"seq": r.seq, "time": r.time, "time_utc": jit_common::time::format_utc(r.time),
           "actor": r.actor, "event": r.event, "details": details,
           "prev_hash": r.prev_hash, "hash": r.hash})
}

/// A record as one JSON line (with its `\n`).
pub fn json_line(r: &Record) -> String {
    let mut s = json_value(r).to_string();
    s.push('\n');
    s
}

/// One CSV cell: a cell a spreadsheet would read as a formula (first character `=`, `+`,
/// `-`, `@`, tab or CR, or first non-whitespace character `=`, `+`, `-`, `@`: an import
/// that trims blanks would run it) gets a `'` in front; a cell with a comma, a double quote,
/// CR or LF is quoted, its quotes doubled (RFC 4180).
pub fn csv_cell(text: &str) -> String {
    let defused;
    let formula =
        text.starts_with(['\t', '\r']) || text.trim_start().starts_with(['=', '+', '-', '@']);
    let text = if formula {
        defused = format!("'{text}");
        defused.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A record as one CSV line (with its CRLF), in the columns of [`CSV_HEADER`]; `details` is
/// the stored JSON text.
pub fn csv_line(r: &Record) -> String {
    let cells = [
        r.seq.to_string(),
        r.time.to_string(),
        jit_common::time::format_utc(r.time),
        r.actor.clone(),
        r.event.clone(),
        r.details.clone(),
        r.prev_hash.clone(),
        r.hash.clone(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(actor: &str, details: &str) -> Record {
        Record {
            seq: 7,
            time: 1_795_435_200,
            actor: actor.into(),
            event: "request".into(),
            details: details.into(),
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
        }
    }

    #[test]
    fn csv_cells_are_quoted_as_rfc_4180_says() {
        assert_eq!(csv_cell("alice"), "alice");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_defused() {
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            let cell = csv_cell(bad);
            let inner = cell.trim_start_matches('"');
            assert!(inner.starts_with('\''), "{bad:?} -> {cell:?}");
        }
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("=1,2"), "\"'=1,2\"");
        // Leading blanks do not hide a formula (spreadsheets may trim them on import).
        for bad in [
            " =1+1",
            "  +1",
            "\n=HYPERLINK(\"x\")",
            "\t @A1",
            "\r\n-2",
            "\u{a0}=1",
        ] {
            let cell = csv_cell(bad);
            let inner = cell.trim_start_matches('"');
            assert!(inner.starts_with('\''), "{bad:?} -> {cell:?}");
        }
        // Only the first non-blank character counts.
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(" a=b"), " a=b");
        assert_eq!(csv_cell("   "), "   ");
    }

    #[test]
    fn a_csv_line_has_the_header_columns_and_crlf() {
        let line = csv_line(&rec("=cmd|' /C calc'!A0", "{\"reason\":\"a, \\\"b\\\"\"}"));
        assert!(line.ends_with("\r\n"));
        assert_eq!(
            line,
            format!(
                "7,1795435200,2026-11-23T12:00:00Z,'=cmd|' /C calc'!A0,request,\"{{\"\"reason\"\":\"\"a, \\\"\"b\\\"\"\"\"}}\",{},{}\r\n",
                "0".repeat(64),
                "a".repeat(64)
            )
        );
        assert_eq!(CSV_HEADER.trim_end().split(',').count(), 8);
    }

    #[test]
    fn json_lines_are_what_the_cli_exports() {
        let line = json_line(&rec("alice", "{\"request_id\":\"r-1\"}"));
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["details"]["request_id"], "r-1");
        assert_eq!(v["time_utc"], "2026-11-23T12:00:00Z");
        // Details that do not parse are kept as text.
        let v = json_value(&rec("alice", "not json"));
        assert_eq!(v["details"], "not json");
    }
}
