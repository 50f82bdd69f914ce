//! Host selectors (`db-*`, `web-[0-9]?`) from grants against host names: the linear
//! matcher in `jit_common::host` is compared with a plain recursive reference matcher
//! (same class syntax), so a wrong allow or deny on any pattern shows up as a crash.
//!
//! Input: `SELECTOR\nHOST`.
#![no_main]

use jit_common::host;
use libfuzzer_sys::fuzz_target;

/// The class at `pat[start] == b'['`: (matched, index after `]`). Same syntax as the
/// library: `!` negates, `a-z` ranges, ASCII case folded.
fn class(pat: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let end = start + 1 + pat[start + 1..].iter().position(|&b| b == b']')?;
    let mut body = &pat[start + 1..end];
    let negate = body.first() == Some(&b'!');
    if negate {
        body = &body[1..];
    }
    let c = c.to_ascii_lowercase();
    let mut matched = false;
    let mut i = 0;
    while i < body.len() {
        let lo = body[i].to_ascii_lowercase();
        if i + 2 < body.len() && body[i + 1] == b'-' {
            let hi = body[i + 2].to_ascii_lowercase();
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    Some((matched != negate, end + 1))
}

fn reference(pat: &[u8], text: &[u8]) -> bool {
    // memo[p][t]: whether pat[p..] matches text[t..]; filled from the end.
    let (np, nt) = (pat.len(), text.len());
    let mut memo = vec![vec![false; nt + 1]; np + 2];
    memo[np][nt] = true;
    for p in (0..np).rev() {
        for t in (0..=nt).rev() {
            memo[p][t] = match pat[p] {
                b'*' => memo[p + 1][t] || (t < nt && memo[p][t + 1]),
                b'?' => t < nt && memo[p + 1][t + 1],
                b'[' => match (t < nt).then(|| class(pat, p, text[t])).flatten() {
                    Some((true, next)) => memo[next][t + 1],
                    _ => false,
                },
                c => t < nt && c.eq_ignore_ascii_case(&text[t]) && memo[p + 1][t + 1],
            };
        }
    }
    memo[0][0]
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (sel, name) = s.split_once('\n').unwrap_or((s, "db-1"));
    let got = host::matches(sel, name);
    let valid =
        host::validate_selector(sel).is_ok() && !name.is_empty() && name.len() <= host::MAX_LEN;
    let want = valid && reference(sel.as_bytes(), name.as_bytes());
    assert_eq!(
        got, want,
        "selector {sel:?} host {name:?}: matcher {got}, reference {want}"
    );
});
