//! Bulk inserts with PostgreSQL's `COPY … FROM STDIN`, inside a transaction of the `Any` pool.
//!
//! A multi-row `INSERT` makes PostgreSQL insert row by row; `COPY` inserts a batch of rows per
//! heap page (`heap_multi_insert`) and skips the parser and planner for the values. The
//! federation receiver's catch-up is made of such inserts (see bench/README, "Federation").
//! sqlx's `Any` driver has no `COPY`, so [`copy_in`] reaches the `PgConnection` underneath
//! (vendored `sqlx-core`, see `vendor/sqlx-core/PATCHED.md`).

use sqlx::AnyConnection;
use sqlx::postgres::PgConnection;

/// Rows in `COPY`'s text format: fields separated by tabs, rows ended by newlines, `\N` for
/// NULL, and backslash escapes for the four characters that would break that framing.
#[derive(Debug, Default)]
pub struct CopyRows {
    data: Vec<u8>,
    row_started: bool,
    rows: usize,
}

impl CopyRows {
    pub fn new() -> CopyRows {
        CopyRows::default()
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn field(&mut self) -> &mut Vec<u8> {
        if self.row_started {
            self.data.push(b'\t');
        }
        self.row_started = true;
        &mut self.data
    }

    pub fn text(&mut self, value: &str) -> &mut CopyRows {
        let data = self.field();
        for byte in value.bytes() {
            match byte {
                b'\\' => data.extend_from_slice(b"\\\\"),
                b'\t' => data.extend_from_slice(b"\\t"),
                b'\n' => data.extend_from_slice(b"\\n"),
                b'\r' => data.extend_from_slice(b"\\r"),
                _ => data.push(byte),
            }
        }
        self
    }

    pub fn int(&mut self, value: i64) -> &mut CopyRows {
        let text = value.to_string();
        self.field().extend_from_slice(text.as_bytes());
        self
    }

    /// A finite float, as Rust prints it: the shortest text that reads back as the same value.
    pub fn float(&mut self, value: f64) -> &mut CopyRows {
        let text = value.to_string();
        self.field().extend_from_slice(text.as_bytes());
        self
    }

    pub fn null(&mut self) -> &mut CopyRows {
        self.field().extend_from_slice(b"\\N");
        self
    }

    pub fn end_row(&mut self) {
        self.data.push(b'\n');
        self.row_started = false;
        self.rows += 1;
    }
}

/// Copies `rows` into `table (columns)` on this connection, in its current transaction, and
/// returns the number of rows written. Rows are inserted in the order given, so identity
/// columns are numbered in that order. The connection must be PostgreSQL.
pub async fn copy_in(
    conn: &mut AnyConnection,
    table: &str,
    columns: &str,
    rows: CopyRows,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let pg = conn
        .driver_mut()
        .downcast_mut::<PgConnection>()
        .ok_or_else(|| sqlx::Error::Protocol("COPY needs a PostgreSQL connection".into()))?;
    let mut copy = pg
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
        .await?;
    copy.send(rows.data).await?;
    copy.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(rows: &CopyRows) -> &str {
        std::str::from_utf8(&rows.data).unwrap()
    }

    #[test]
    fn fields_are_tab_separated_and_rows_newline_ended() {
        let mut rows = CopyRows::new();
        assert!(rows.is_empty());
        rows.text("a").int(-7).float(1.5).null().end_row();
        rows.text("").int(0).float(3.0).text("b").end_row();
        assert_eq!(text_of(&rows), "a\t-7\t1.5\t\\N\n\t0\t3\tb\n");
        assert!(!rows.is_empty());
    }

    #[test]
    fn framing_characters_are_escaped_and_the_rest_kept() {
        let mut rows = CopyRows::new();
        rows.text("tab\there\nnew\rline \\N 书院 🎋").end_row();
        assert_eq!(text_of(&rows), "tab\\there\\nnew\\rline \\\\N 书院 🎋\n");
    }
}
