//! Cursors for lists read a page at a time, newest first: a cursor names the last row of a
//! page by its time and id, so the next page starts right after it however many rows are
//! added meanwhile. Opaque to callers (base64url); a tampered cursor only names another
//! place in the caller's own list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;

pub fn encode(at: NaiveDateTime, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", at.and_utc().timestamp_micros()))
}

pub fn decode(cursor: &str) -> Option<(NaiveDateTime, String)> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let (micros, id) = std::str::from_utf8(&raw).ok()?.split_once('.')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_names_and_garbage_names_nothing() {
        let at = chrono::DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap().naive_utc();
        assert_eq!(decode(&encode(at, "a.b-c")), Some((at, "a.b-c".to_owned())));
        for bad in ["", "!!", "bm90IGEgY3Vyc29y", "eC55"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
