//! The claims peek ([`super::peek_claims_unverified`]) as a single forward scan of the JSON
//! body (issue 18): the sudo gate's pre-filter runs it on every grant file of the caller
//! (50 in the bench), where serde's parse of the whole body, plus a separate search for the
//! signature block, was a third of the module's instructions.
//!
//! It reads only the top-level keys `user`, `sudo`, `not_after`, `hosts` and
//! `session_bound`, skips every other value (strings with escapes, numbers, literals, nested
//! arrays and objects, bounded depth), and requires the signature block right after the
//! object, on its own line, as `split_body` finds it. On every body serde's reading accepts
//! with plain (unescaped) keys and claim strings, which is every body the CA writes, it
//! gives the same claims (tested against serde's peek). Elsewhere it may differ either way,
//! and that is harmless: it only chooses which files are verified first. A file it passes
//! that cannot allow is refused by the full check; one it refuses is still checked by the
//! decision's full loop (only a needed string or key with an escape is refused here and
//! might pass the full parse, and the CA never writes one).

use std::borrow::Cow;

use super::ClaimsPeek;
use crate::envelope::MAX_GRANT_SIZE;
use crate::time::UnixTime;

/// Deepest nesting skipped (grants nest two levels: `approvers`).
const MAX_DEPTH: u32 = 16;
const SIGNATURE_BEGIN: &[u8] = b"-----BEGIN SSH SIGNATURE-----";

/// See the module documentation.
pub(super) fn peek(input: &[u8]) -> Option<ClaimsPeek<'_>> {
    if input.len() > MAX_GRANT_SIZE {
        return None;
    }
    let mut s = Scan { b: input, i: 0 };
    s.eat(b'{')?;
    let mut user = None;
    let mut sudo = None;
    let mut not_after = None;
    let mut hosts = None;
    let mut session_bound = None;
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            let key = s.plain_bytes()?;
            s.eat(b':')?;
            match key {
                b"user" => once(&mut user, s.plain_str()?)?,
                b"sudo" => once(&mut sudo, s.boolean()?)?,
                b"not_after" => once(&mut not_after, s.unsigned()?)?,
                b"hosts" => once(&mut hosts, s.str_array()?)?,
                b"session_bound" => once(&mut session_bound, s.boolean()?)?,
                _ => s.skip_value(0)?,
            }
            match s.peek()? {
                b',' => s.i += 1,
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    // Then the signature block, at the start of a line.
    s.ws();
    let rest = s.b.get(s.i..)?;
    let line_start = s.i.checked_sub(1).and_then(|p| s.b.get(p)) == Some(&b'\n');
    if !line_start || !rest.starts_with(SIGNATURE_BEGIN) {
        return None;
    }
    Some(ClaimsPeek {
        user: Cow::Borrowed(user?),
        sudo: sudo?,
        not_after: UnixTime::from_secs(not_after?),
        hosts: hosts?,
        session_bound: session_bound.unwrap_or(false),
    })
}

/// Sets `slot` unless it is already set (a duplicated key refuses the document, as serde's
/// derived `Deserialize` does).
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// Skips JSON whitespace.
    fn ws(&mut self) {
        let rest = self.b.get(self.i..).unwrap_or_default();
        self.i += rest
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len());
    }

    /// The next byte after whitespace (not consumed).
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? != c {
            return None;
        }
        self.i += 1;
        Some(())
    }

    /// A string without escapes, borrowed; `None` for one with an escape or a control
    /// character (serde refuses the latter too).
    fn plain_str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.plain_bytes()?).ok()
    }

    /// [`Scan::plain_str`]'s bytes, not checked for UTF-8 (for keys, compared as bytes).
    fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = self.b.get(self.i..)?;
        let n = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest.get(n) != Some(&b'"') {
            return None;
        }
        self.i += n + 1;
        rest.get(..n)
    }

    /// An array of plain strings.
    fn str_array(&mut self) -> Option<Vec<Cow<'a, str>>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(Cow::Borrowed(self.plain_str()?));
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        self.ws();
        let rest = self.b.get(self.i..)?;
        let (v, n) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += n;
        self.end_of_scalar()?;
        Some(v)
    }

    /// A non-negative integer that fits a u64 (no sign, fraction or exponent).
    fn unsigned(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        self.end_of_scalar()?;
        digits.parse().ok()
    }

    /// A scalar must be followed by whitespace, `,`, `}` or `]`.
    fn end_of_scalar(&self) -> Option<()> {
        match self.b.get(self.i)? {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']' => Some(()),
            _ => None,
        }
    }

    /// Any string (escapes skipped, not decoded).
    fn skip_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let rest = self.b.get(self.i..)?;
            let n = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            self.i += n + 1;
            match rest.get(n)? {
                b'"' => return Some(()),
                b'\\' => self.i += 1,
                _ => return None,
            }
        }
    }

    /// Any JSON value, not decoded.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_str(),
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let (object, close) = (open == b'{', if open == b'{' { b'}' } else { b']' });
                self.i += 1;
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if object {
                        self.skip_str()?;
                        self.eat(b':')?;
                    }
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                // A number or a literal (true, false, null).
                let start = self.i;
                while matches!(
                    self.b.get(self.i),
                    Some(b'0'..=b'9' | b'a'..=b'z' | b'.' | b'+' | b'-' | b'E')
                ) {
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
                self.end_of_scalar()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Approval, Grant, peek_claims_serde};
    use super::*;
    use ssh_key::{Algorithm, PrivateKey, rand_core::OsRng};

    fn grant(id: &str) -> Grant {
        Grant {
            version: 1,
            id: id.into(),
            user: "alice".into(),
            role: "ops".into(),
            hosts: vec!["db-1".into(), "web-*".into()],
            sudo: true,
            not_before: UnixTime::from_secs(1_800_000_000),
            not_after: UnixTime::from_secs(1_800_000_600),
            issued_at: UnixTime::from_secs(1_800_000_000),
            request_id: "r-1".into(),
            reason: "test".into(),
            approvers: vec![Approval {
                user: "bob".into(),
                at: UnixTime::from_secs(1_800_000_000),
            }],
            ticket: None,
            cert_serial: None,
            session_bound: false,
            key_id: String::new(),
        }
    }

    /// Every shape the CA writes: the scan and serde agree, and both accept.
    #[test]
    fn agrees_with_serde_on_signed_grants() {
        let k = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let mut shapes = vec![grant("g-1")];
        let mut g = grant("g-2");
        g.session_bound = true;
        g.cert_serial = Some(u64::MAX);
        g.ticket = Some("OPS-1".into());
        g.reason =
            "quotes \" and \\ backslashes, \u{e9}t\u{e9}, {braces} [brackets], \"sudo\": false"
                .into();
        g.approvers.push(Approval {
            user: "carol".into(),
            at: UnixTime::from_secs(0),
        });
        shapes.push(g);
        let mut g = grant("g-3");
        g.sudo = false;
        g.hosts = vec!["*".into()];
        g.not_before = UnixTime::from_secs(1);
        g.issued_at = UnixTime::from_secs(1);
        g.not_after = UnixTime::from_secs(2);
        shapes.push(g);
        for g in shapes {
            let doc = g.clone().sign(&k).unwrap();
            let fast = peek(&doc);
            assert!(fast.is_some(), "{}", String::from_utf8_lossy(&doc));
            assert_eq!(fast, peek_claims_serde(&doc));
            let p = fast.unwrap();
            assert_eq!(
                (p.user.as_ref(), p.sudo, p.not_after, p.session_bound),
                (g.user.as_str(), g.sudo, g.not_after, g.session_bound)
            );
            assert_eq!(p.hosts, g.hosts);
        }
    }

    /// Edited bodies: refused where the claims are missing, doubled, mistyped or escaped, or
    /// the signature block does not follow; unknown fields are skipped as serde skips them.
    #[test]
    fn refuses_what_it_cannot_read_plainly() {
        let k = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let text = String::from_utf8(grant("g-1").sign(&k).unwrap()).unwrap();
        let edit = |from: &str, to: &str| {
            assert!(text.contains(from), "{from}");
            text.replacen(from, to, 1)
        };
        let refused = [
            edit("\"user\": \"alice\"", "\"usr\": \"alice\""),
            edit("\"user\": \"alice\"", "\"user\": \"al\\u0069ce\""),
            edit("\"user\": \"alice\"", "\"user\": 7"),
            edit("\"sudo\": true", "\"sudo\": 1"),
            edit("\"sudo\": true", "\"sudo\": truex"),
            edit("\"sudo\": true", "\"sudo\": true, \"sudo\": true"),
            edit("\"not_after\": 1800000600", "\"not_after\": -1"),
            edit("\"not_after\": 1800000600", "\"not_after\": 1.8e9"),
            edit("\"not_after\": 1800000600", "\"not_after\": 018"),
            edit(
                "\"not_after\": 1800000600",
                "\"not_after\": 99999999999999999999",
            ),
            edit("\"hosts\": [", "\"hosts\": [1, "),
            edit(
                "\n-----BEGIN SSH SIGNATURE-----",
                "\nx\n-----BEGIN SSH SIGNATURE-----",
            ),
            edit(
                "\n-----BEGIN SSH SIGNATURE-----",
                " -----BEGIN SSH SIGNATURE-----",
            ),
            edit(
                "\"reason\": \"test\"",
                "\"reason\": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]",
            ),
            edit("\"reason\": \"test\"", "\"reason\": \"te\nst\""),
            text.replacen("{", "[", 1),
            text.split("-----BEGIN").next().unwrap().to_string(),
        ];
        for doc in &refused {
            assert_eq!(peek(doc.as_bytes()), None, "{doc}");
        }
        // Unknown fields, nested values and escapes in skipped strings are skipped.
        for doc in [
            edit(
                "\"reason\": \"test\"",
                "\"reason\": \"t\\\"e\\\\st\\u00e9\", \"extra\": {\"a\": [1, 2.5e-3, null, {\"b\": \"}\"}]}",
            ),
            edit("\"sudo\": true", "\"sudo\":true"),
        ] {
            let fast = peek(doc.as_bytes());
            assert!(fast.is_some(), "{doc}");
            assert_eq!(fast, peek_claims_serde(doc.as_bytes()), "{doc}");
        }
        // Too large: refused before reading.
        let mut big = text.clone().into_bytes();
        big.resize(MAX_GRANT_SIZE + 1, b' ');
        assert_eq!(peek(&big), None);
        // Every prefix: no panic, and nothing without the signature line.
        for n in 0..text.len() {
            let cut = text.as_bytes().get(..n).unwrap();
            if !cut
                .windows(SIGNATURE_BEGIN.len())
                .any(|w| w == SIGNATURE_BEGIN)
            {
                assert_eq!(peek(cut), None);
            }
        }
    }
}
