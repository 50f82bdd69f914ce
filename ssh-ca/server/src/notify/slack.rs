//! The `format = "slack"` rendering: an incoming-webhook message (`text` as the fallback,
//! `blocks` in Block Kit) made from an [`Event`].
//!
//! A message delivers a request; it never approves one. It carries no button and no link
//! that acts: the decision is the exact command (`jit approve ID`, `jit deny ID --reason
//! 'why'`) as text, run by the approver with their own key (chat previews fetch links, so a
//! link that changed state would fire without a click). The one link it may carry, when
//! `public_url` is set, is to the request's page on the CA's web interface
//! (`{public_url}/ui/requests/{id}`, [`super::link`]): a read-only GET (the login page for a
//! browser without a session), so a preview fetching it changes nothing; deciding there is
//! a logged-in form post with a CSRF token. Without `public_url` there is no link at all.
//! [`check_shape`] refuses any other link. Every string a user supplied (reason, ticket, names, hosts) is
//! escaped for mrkdwn (`&`, `<`, `>`), so a reason cannot make a link, a mention or
//! `<!channel>`; every mrkdwn object is `verbatim` (Slack does not auto-link a URL or parse
//! `@channel` in it); user text sits in code spans (no `*`/`_`/`~` formatting). Only contact
//! handles set by the operator (`jit-ca user add --contact`) that are Slack member ids become
//! mentions. Link unfurling is switched off.
//!
//! Limits kept (Slack refuses a message beyond them): at most 50 blocks, header text 150
//! characters, section text 3000, 10 fields of 2000 each, 10 context elements; see
//! [`check_shape`], which the tests (and the integration tests' receiver) apply.

use serde_json::{Value, json};

use super::event::{Event, Kind, RequestFacts};

/// Most characters of a header's plain text.
pub const MAX_HEADER: usize = 150;
/// Most characters of a section's text.
pub const MAX_TEXT: usize = 3000;
/// Most characters of one field.
pub const MAX_FIELD: usize = 2000;
/// Most fields in a section.
pub const MAX_FIELDS: usize = 10;
/// Most blocks in a message.
pub const MAX_BLOCKS: usize = 50;
/// Most elements in a context block.
pub const MAX_CONTEXT: usize = 10;

/// `s` escaped for Slack mrkdwn (`&` `<` `>`, the three characters Slack's markup uses for
/// links, mentions and special commands), cut to at most `max` characters after escaping
/// (never inside an entity), with `…` when cut.
pub fn escape(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut used = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let len = if piece.is_empty() {
            1
        } else {
            piece.chars().count()
        };
        // Room for this piece, and for the ellipsis if more follows.
        let reserve = usize::from(chars.peek().is_some());
        if used + len + reserve > max {
            if used < max {
                out.push('…');
            }
            return out;
        }
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
        used += len;
    }
    out
}

/// A contact handle as shown: a Slack member id (`U…`/`W…`, upper-case letters and digits)
/// becomes a mention (`<@U0123ABCD>`); anything else is shown as text, escaped.
pub fn mention(handle: &str) -> String {
    let id = handle.strip_prefix('@').unwrap_or(handle);
    let is_member_id = (3..=32).contains(&id.len())
        && (id.starts_with('U') || id.starts_with('W'))
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if is_member_id {
        format!("<@{id}>")
    } else {
        escape(handle, 100)
    }
}

/// A mrkdwn text object, `verbatim`: Slack neither turns URLs into links nor parses
/// `@channel`, `#channel` or bare mentions in it (the `<@U…>` mentions made by [`mention`]
/// are still honoured).
fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// User text (escaped, cut to `max` characters in all) as an inline code span: `*`, `_`,
/// `~` inside it toggle no formatting (a reason `*APPROVED*` is not shown bold, a host
/// `db-*` stays as written). A backtick in it, which would end the span, is shown as `ˋ`.
pub fn code(s: &str, max: usize) -> String {
    let inner = escape(s, max.saturating_sub(2).max(1)).replace('`', "ˋ");
    format!("`{inner}`")
}

/// Longer user text (escaped) as a code block, where no formatting applies.
fn code_block(s: &str, max: usize) -> String {
    let inner = escape(s, max.saturating_sub(8).max(1)).replace('`', "ˋ");
    format!("```{inner}```")
}

fn field(label: &str, value: &str) -> Value {
    mrkdwn(format!(
        "*{label}*\n{}",
        code(value, MAX_FIELD - label.len() - 3)
    ))
}

fn when(t: u64) -> String {
    super::event::rfc3339(t)
}

fn duration(secs: u64) -> String {
    jit_common::time::format_duration(secs)
}

/// The one line that says what happened (escaped mrkdwn).
fn headline(e: &Event, r: &RequestFacts) -> String {
    let (user, role, actor) = (
        format!("*{}*", escape(&r.user, 100)),
        format!("*{}*", escape(&r.role, 100)),
        format!("*{}*", escape(&e.actor, 100)),
    );
    let a = &r.approvals;
    match e.kind {
        Kind::RequestCreated => format!("{user} requests {role} for {}", duration(r.duration_secs)),
        Kind::RequestApproved => format!(
            "{actor} approved {user}'s request for {role} ({} of {})",
            a.count, a.required
        ),
        Kind::RequestDenied => format!("{actor} denied {user}'s request for {role}"),
        Kind::RequestCancelled => format!("{user} cancelled their request for {role}"),
        // An approved request's window ended (the elevation is over), or a pending one was
        // never decided: `previous_state` tells them apart.
        Kind::RequestExpired if r.previous_state.as_deref() == Some("approved") => {
            format!("{user}'s {role} elevation ended")
        }
        Kind::RequestExpired => format!("{user}'s request for {role} expired undecided"),
        Kind::RequestIssued => match r.valid_before {
            Some(end) => format!("{user} holds {role} until {}", when(end)),
            None => format!("{user} holds {role}"),
        },
        Kind::RequestRevoked => format!("{actor} revoked {user}'s {role} elevation"),
        Kind::RequestExtended => match r.valid_before {
            Some(end) => format!("{user}'s {role} elevation was extended until {}", when(end)),
            None => format!("{user}'s {role} elevation was extended"),
        },
        Kind::RequestExpiring => match r.valid_before {
            Some(end) => format!("{user}'s {role} elevation ends at {}", when(end)),
            None => format!("{user}'s {role} elevation ends soon"),
        },
        _ => format!("{} about {user}'s request for {role}", e.kind),
    }
}

/// The fields of a request: who, role, hosts, duration, ticket, approvals, expiry, window.
fn request_fields(r: &RequestFacts) -> Vec<Value> {
    let who = match &r.contact {
        Some(c) => format!("*Who*\n{} ({})", code(&r.user, 200), mention(c)),
        None => format!("*Who*\n{}", code(&r.user, 200)),
    };
    let mut fields = vec![
        mrkdwn(who),
        field("Role", &r.role),
        field("Hosts", &r.hosts.join(", ")),
        field(
            "Duration",
            &format!(
                "{}{}",
                duration(r.duration_secs),
                if r.sudo { ", sudo" } else { "" }
            ),
        ),
        field("Ticket", r.ticket.as_deref().unwrap_or("none")),
        field(
            "Approvals",
            &format!("{} of {}", r.approvals.count, r.approvals.required),
        ),
    ];
    if r.state == "pending" {
        fields.push(field("Pending until", &when(r.pending_expires_at)));
    }
    if let Some(start) = r.not_before {
        fields.push(field("Starts", &when(start)));
    }
    if let (Some(from), Some(to)) = (r.valid_after, r.valid_before) {
        fields.push(field("Window", &format!("{} to {}", when(from), when(to))));
    }
    fields.truncate(MAX_FIELDS);
    fields
}

/// Whether `e` concerns a request that still waits for approvals: pending, and not the
/// approval that completes it (its record is written before the request's state changes,
/// so the last `request.approved` still says `pending`; `request.issued` follows).
pub fn awaits_decision(e: &Event) -> bool {
    !e.kind.is_alert()
        && e.data
            .request
            .as_ref()
            .is_some_and(|r| r.state == "pending" && r.approvals.count < r.approvals.required)
}

/// The mrkdwn of the link to a request's page (`url` from [`super::link::request_url`]):
/// `&`, `<`, `>` escaped and `|` encoded, so the operator's `public_url` cannot end the link
/// or change its text.
fn page_link(url: &str, id: &str) -> String {
    let target = escape(url, 2000).replace('|', "%7C");
    format!(
        "<{target}|Open request {} on the web page> (read only until you log in with `jit web`)",
        escape(id, 100)
    )
}

/// The incoming-webhook message for `e`; `approvers` are the contact handles of the
/// request's eligible approvers (mentioned while it is pending); `public_url` (config) makes
/// the one link, to the request's read-only page (None: no link).
pub fn render(e: &Event, approvers: &[String], public_url: Option<&str>) -> Value {
    let mut blocks = Vec::new();
    let (header, fallback) = match (&e.data.alert, &e.data.request) {
        (Some(a), _) => (
            format!("JIT alert: {}", e.kind.as_str()),
            format!("JIT alert: {}", escape(&a.summary, 500)),
        ),
        // headline() is escaped already: the fallback is not escaped again.
        (None, Some(r)) => (
            format!("JIT request {}", r.id),
            format!("{}: {}", e.kind, headline(e, r)),
        ),
        (None, None) => (format!("JIT {}", e.kind), format!("JIT {}", e.kind)),
    };
    blocks.push(json!({"type": "header", "text": {"type": "plain_text",
        "text": escape(&header, MAX_HEADER), "emoji": false}}));
    if let Some(a) = &e.data.alert {
        blocks.push(json!({"type": "section", "text": mrkdwn(format!(
            "*What happened*\n{}\n*What to check*\n{}",
            code_block(&a.summary, 1400),
            code_block(&a.check, 1400)
        ))}));
        if !a.users.is_empty() {
            // A summary's every user (capped like any text; the payload has them all).
            blocks.push(json!({"type": "section", "text": mrkdwn(format!(
                "*Users ({})*\n{}",
                a.users.len(),
                code_block(&a.users.join(", "), MAX_TEXT - 40)
            ))}));
        }
    }
    if let Some(r) = &e.data.request {
        blocks.push(json!({"type": "section", "text": mrkdwn(headline(e, r))}));
        blocks.push(json!({"type": "section", "fields": request_fields(r)}));
        blocks.push(json!({"type": "section", "text": mrkdwn(format!(
            "*Reason*\n{}",
            code_block(&r.reason, MAX_TEXT - 20)
        ))}));
        if let Some(why) = &r.decision_reason {
            blocks.push(json!({"type": "section", "text": mrkdwn(format!(
                "*Why*\n{}",
                code_block(why, MAX_TEXT - 20)
            ))}));
        }
        if let Some(base) = public_url {
            let url = super::link::request_url(base, &r.id);
            blocks.push(json!({"type": "section", "text": mrkdwn(page_link(&url, &r.id))}));
        }
        if awaits_decision(e) {
            let id = escape(&r.id, 100);
            let mut text = format!(
                "Decide with your own key: `jit show {id}` then `jit approve {id}` or `jit deny {id} --reason 'why'`"
            );
            if !approvers.is_empty() {
                let who: Vec<_> = approvers.iter().take(20).map(|h| mention(h)).collect();
                text.push_str(&format!("\nApprovers: {}", who.join(" ")));
            }
            blocks.push(json!({"type": "divider"}));
            blocks.push(json!({"type": "section", "text": mrkdwn(text)}));
        }
    }
    blocks.push(json!({"type": "context", "elements": [mrkdwn(format!(
        "{} · {} · {}",
        e.kind,
        escape(&e.id, 100),
        e.timestamp
    ))]}));
    json!({
        "text": fallback,
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// Checks `msg` against the Block Kit shape this module produces (and Slack's limits): the
/// block types used, text object types, lengths and counts. The message says what is wrong.
pub fn check_shape(msg: &Value) -> Result<(), String> {
    fn text_obj(v: &Value, kind: &str, max: usize, at: &str) -> Result<(), String> {
        let t = v.get("type").and_then(Value::as_str);
        if t != Some(kind) {
            return Err(format!("{at}: text type {t:?}, expected {kind:?}"));
        }
        let s = v
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}: no text"))?;
        let n = s.chars().count();
        if n == 0 || n > max {
            return Err(format!("{at}: text of {n} characters (1 to {max})"));
        }
        if kind == "mrkdwn" && v.get("verbatim") != Some(&Value::Bool(true)) {
            return Err(format!(
                "{at}: a mrkdwn text without \"verbatim\": true (Slack would auto-link URLs)"
            ));
        }
        if kind == "mrkdwn" {
            only_page_links(s).map_err(|e| format!("{at}: {e}"))?;
        }
        Ok(())
    }
    /// Every `<...>` markup in a mrkdwn text is a member mention or a link to a request's
    /// read-only page (`http(s)://.../ui/requests/ID|text`).
    fn only_page_links(s: &str) -> Result<(), String> {
        let mut rest = s;
        while let Some(i) = rest.find('<') {
            let after = &rest[i + 1..];
            let end = after.find('>').ok_or("an unclosed '<'")?;
            let inner = &after[..end];
            let mention = inner.starts_with('@')
                && inner[1..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !mention {
                let (target, _text) = inner
                    .split_once('|')
                    .ok_or_else(|| format!("a link without text: <{inner}>"))?;
                let page = target
                    .rsplit_once("/ui/requests/")
                    .is_some_and(|(base, id)| {
                        (base.starts_with("https://") || base.starts_with("http://"))
                            && !base.contains(char::is_whitespace)
                            && !id.is_empty()
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b))
                    });
                if !page {
                    return Err(format!(
                        "a link that is not a request's page: <{inner}> (no links or buttons in a message but that one)"
                    ));
                }
            }
            rest = &after[end + 1..];
        }
        Ok(())
    }
    let text = msg
        .get("text")
        .and_then(Value::as_str)
        .ok_or("no fallback text")?;
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err("fallback text empty or too long".into());
    }
    let blocks = msg
        .get("blocks")
        .and_then(Value::as_array)
        .ok_or("no blocks")?;
    if blocks.is_empty() || blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks (1 to {MAX_BLOCKS})", blocks.len()));
    }
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("blocks[{i}]");
        match b.get("type").and_then(Value::as_str) {
            Some("header") => text_obj(&b["text"], "plain_text", MAX_HEADER, &at)?,
            Some("divider") => {}
            Some("section") => {
                let (text, fields) = (b.get("text"), b.get("fields"));
                if text.is_none() && fields.is_none() {
                    return Err(format!("{at}: a section needs text or fields"));
                }
                if let Some(t) = text {
                    text_obj(t, "mrkdwn", MAX_TEXT, &at)?;
                }
                if let Some(f) = fields {
                    let f = f.as_array().ok_or(format!("{at}: fields is no list"))?;
                    if f.is_empty() || f.len() > MAX_FIELDS {
                        return Err(format!("{at}: {} fields (1 to {MAX_FIELDS})", f.len()));
                    }
                    for x in f {
                        text_obj(x, "mrkdwn", MAX_FIELD, &at)?;
                    }
                }
            }
            Some("context") => {
                let el = b["elements"]
                    .as_array()
                    .ok_or(format!("{at}: no elements"))?;
                if el.is_empty() || el.len() > MAX_CONTEXT {
                    return Err(format!("{at}: {} elements", el.len()));
                }
                for x in el {
                    text_obj(x, "mrkdwn", MAX_TEXT, &at)?;
                }
            }
            other => return Err(format!("{at}: block type {other:?} is not used here")),
        }
        if b.get("accessory").is_some() || b.get("url").is_some() {
            return Err(format!("{at}: no links or buttons in a message"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::tests::{approved, request};
    use crate::notify::event::{AlertFacts, Data, Kind};

    fn all_text(v: &Value) -> String {
        v.to_string()
    }

    /// Calls `f` on every `{"type": "mrkdwn"}` object in `v`.
    fn every_mrkdwn(v: &Value, f: &mut dyn FnMut(&Value)) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&Value::String("mrkdwn".into())) {
                    f(v);
                }
                m.values().for_each(|x| every_mrkdwn(x, f));
            }
            Value::Array(a) => a.iter().for_each(|x| every_mrkdwn(x, f)),
            _ => {}
        }
    }

    #[test]
    fn a_mrkdwn_text_without_verbatim_is_refused() {
        let plain = json!({"text": "t", "blocks": [{"type": "section",
            "text": {"type": "mrkdwn", "text": "https://evil.example"}}]});
        assert!(check_shape(&plain).unwrap_err().contains("verbatim"));
        assert_eq!(code("a`b*c", 100), "`aˋb*c`");
        assert!(code(&"x".repeat(500), 10).chars().count() <= 10);
    }

    /// R1 D4: an approved request whose window ended is "ended", not "expired undecided".
    #[test]
    fn an_ended_elevation_is_not_called_undecided() {
        let mut e = approved();
        e.kind = Kind::RequestExpired;
        e.actor = "system".into();
        let mut r = request();
        r.state = "expired".into();
        r.previous_state = Some("approved".into());
        r.valid_after = Some(1_795_992_000);
        r.valid_before = Some(1_795_993_800);
        e.data.request = Some(r.clone());
        let s = all_text(&render(&e, &[], None));
        assert!(s.contains("*alice*'s *db-admin* elevation ended"), "{s}");
        assert!(!s.contains("undecided"), "{s}");
        r.previous_state = Some("pending".into());
        e.data.request = Some(r);
        let s = all_text(&render(&e, &[], None));
        assert!(
            s.contains("*alice*'s request for *db-admin* expired undecided"),
            "{s}"
        );
    }

    #[test]
    fn escapes_and_cuts_without_breaking_entities() {
        assert_eq!(escape("a<b>&c", 100), "a&lt;b&gt;&amp;c");
        assert_eq!(escape("abcdef", 4), "abc…");
        assert_eq!(escape("abcd", 4), "abcd");
        // "&amp;" does not fit in the room left: cut before it, never inside it.
        assert_eq!(escape("ab&cd", 5), "ab…");
        assert!(escape(&"<".repeat(1000), 3000).chars().count() <= 3000);
        assert_eq!(mention("@U0123ABCD"), "<@U0123ABCD>");
        assert_eq!(mention("W99ZZ"), "<@W99ZZ>");
        assert_eq!(mention("@alice"), "@alice");
        assert_eq!(mention("<!channel>"), "&lt;!channel&gt;");
        assert_eq!(mention("Ualice"), "Ualice");
    }

    #[test]
    fn a_pending_request_carries_the_commands_and_no_link() {
        let mut e = approved();
        e.kind = Kind::RequestCreated;
        e.actor = "alice".into();
        let msg = render(&e, &["@U0BOB1".into(), "@carol".into()], None);
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        for want in [
            "*alice* requests *db-admin* for 30m",
            "*Who*\\n`alice` (@alice)",
            "*Role*\\n`db-admin`",
            "*Hosts*\\n`db-*`",
            "*Duration*\\n`30m, sudo`",
            "*Ticket*\\n`INC-42`",
            "*Approvals*\\n`1 of 2`",
            "*Pending until*\\n`2026-11-29T23:40:00Z`",
            "*Reason*\\n```INC-42 disk full```",
            "`jit approve r-692b7a40a1b2c3d4e5f6`",
            "`jit deny r-692b7a40a1b2c3d4e5f6 --reason 'why'`",
            "Approvers: <@U0BOB1> @carol",
            "\"unfurl_links\":false",
        ] {
            assert!(s.contains(want), "missing {want:?} in {s}");
        }
        assert!(!s.contains("http"), "{s}");
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "JIT request r-692b7a40a1b2c3d4e5f6"
        );
    }

    /// With `public_url`, a request's message links to its read-only page (issue 16), and
    /// to nothing else; never a button.
    #[test]
    fn with_public_url_the_one_link_is_the_request_page() {
        let mut e = approved();
        e.kind = Kind::RequestCreated;
        let msg = render(&e, &[], Some("https://ca.example.com:8443/"));
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        assert!(
            s.contains("<https://ca.example.com:8443/ui/requests/r-692b7a40a1b2c3d4e5f6|Open request r-692b7a40a1b2c3d4e5f6 on the web page>"),
            "{s}"
        );
        assert_eq!(s.matches("http").count(), 1, "{s}");
        assert!(!s.contains("\"accessory\"") && !s.contains("button"), "{s}");
        // The commands stay: the link is for reading.
        assert!(s.contains("`jit approve r-692b7a40a1b2c3d4e5f6`"), "{s}");
        // Decided requests link too (the page shows what happened).
        let mut issued = approved();
        issued.kind = Kind::RequestIssued;
        assert!(
            all_text(&render(&issued, &[], Some("https://ca.example.com")))
                .contains("/ui/requests/r-692b7a40a1b2c3d4e5f6|")
        );
        // An operator's URL cannot end the link or change its text.
        let msg = render(&e, &[], Some("https://ca.example.com/a|b>c"));
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        assert!(
            s.contains("<https://ca.example.com/a%7Cb&gt;c/ui/requests/"),
            "{s}"
        );
        // An alert without a request has no link.
        let mut alert = approved();
        alert.data.request = None;
        assert!(!all_text(&render(&alert, &[], Some("https://ca.example.com"))).contains("http"));
    }

    #[test]
    fn the_shape_check_refuses_any_other_link() {
        for text in [
            "<https://evil.example/approve?id=1|Approve>",
            "<https://ca.example.com/ui/requests/r-1/approve|Approve>",
            "<https://ca.example.com/ui/requests/r-1>",
            "<!channel>",
            "<mailto:x@example.com|x>",
        ] {
            let msg = json!({"text": "t", "blocks": [{"type": "section",
                "text": {"type": "mrkdwn", "text": text, "verbatim": true}}]});
            assert!(check_shape(&msg).is_err(), "{text}");
        }
        let ok = json!({"text": "t", "blocks": [{"type": "section",
            "text": {"type": "mrkdwn", "text": "<@U0BOB1> <https://ca.example.com/ui/requests/r-1|Open>", "verbatim": true}}]});
        check_shape(&ok).unwrap();
    }

    /// The approval that completes a request is recorded while its row still says
    /// `pending`: its message asks nobody to decide (and mentions no approver).
    #[test]
    fn the_last_approval_asks_nobody_to_decide() {
        let mut e = approved();
        let mut r = request();
        r.approvals.count = 2;
        r.approvals.by.push("carol".into());
        e.data.request = Some(r);
        assert!(!awaits_decision(&e));
        let s = all_text(&render(&e, &["@U0BOB1".into()], None));
        assert!(
            !s.contains("jit approve") && !s.contains("Approvers"),
            "{s}"
        );
        assert!(awaits_decision(&approved()));
    }

    #[test]
    fn user_text_cannot_make_a_link_or_a_mention() {
        let mut e = approved();
        let mut r = request();
        r.reason = "<https://evil.example/approve?id=1|Approve> <!channel> <@U0BOSS> & more \
                    https://evil.example/approve #general @channel *APPROVED* `x`"
            .into();
        r.user = "<!here>".into();
        r.role = "a>b".into();
        r.ticket = Some("<x>".into());
        r.hosts = vec!["<h>".into()];
        r.contact = Some("<@U0BOSS>".into());
        r.decision_reason = Some("<!everyone>".into());
        e.actor = "<@U0X>".into();
        e.data.request = Some(r);
        let msg = render(&e, &["<!channel>".into()], None);
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        // The only '<' left would be a mention we made from an operator's member id: none here.
        assert!(!s.contains('<'), "{s}");
        assert!(s.contains("&lt;https://evil.example/approve?id=1|Approve&gt; &lt;!channel&gt;"));
        assert!(s.contains("&amp; more"));
        // Bare URLs and @channel are not parsed (verbatim on every mrkdwn object), and
        // formatting characters of user text sit in code (a backtick cannot end it).
        let mut mrkdwn_objects = 0;
        every_mrkdwn(&msg, &mut |o| {
            mrkdwn_objects += 1;
            assert_eq!(o["verbatim"], true, "{o}");
        });
        assert!(mrkdwn_objects >= 8, "{s}");
        assert!(s.contains("#general @channel *APPROVED* ˋxˋ```"), "{s}");
        assert!(s.contains("*Why*\\n```&lt;!everyone&gt;```"));
    }

    #[test]
    fn decided_requests_and_alerts() {
        let mut e = approved();
        let mut r = request();
        r.state = "approved".into();
        r.approvals.count = 2;
        r.valid_after = Some(1_795_992_000);
        r.valid_before = Some(1_795_993_800);
        e.kind = Kind::RequestIssued;
        e.data.request = Some(r);
        let msg = render(&e, &["@U0BOB1".into()], None);
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        assert!(
            s.contains("*alice* holds *db-admin* until 2026-11-29T23:10:00Z"),
            "{s}"
        );
        assert!(s.contains("*Window*\\n`2026-11-29T22:40:00Z to 2026-11-29T23:10:00Z`"));
        assert!(!s.contains("jit approve"), "{s}");
        assert!(!s.contains("Approvers"), "{s}");

        let alert = crate::notify::event::Event::new(
            "evt_1".into(),
            Kind::AlertSelfApproval,
            0,
            "system",
            Data {
                request: Some(request()),
                alert: Some(AlertFacts {
                    summary: "alice tried to approve her own request <x>".into(),
                    check: "whether alice's key is in someone else's hands".into(),
                    source: None,
                    user: Some("alice".into()),
                    key: None,
                    count: Some(1),
                    window_secs: None,
                    users: Vec::new(),
                }),
            },
        );
        let msg = render(&alert, &[], None);
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "JIT alert: alert.self_approval"
        );
        assert!(
            s.contains("*What happened*\\n```alice tried to approve her own request &lt;x&gt;```")
        );
        assert!(
            !s.contains("jit approve"),
            "an alert never asks for a decision: {s}"
        );
        assert!(!s.contains("*Users"), "no users section without users: {s}");

        // A summary alert lists every user it stands for (escaped, in a code block).
        let summary = crate::notify::event::Event::new(
            "evt_2".into(),
            Kind::AlertAuthFailures,
            0,
            "system",
            Data {
                request: None,
                alert: Some(AlertFacts {
                    summary: "26 more registered keys reached the threshold".into(),
                    check: "who is probing".into(),
                    source: None,
                    user: None,
                    key: None,
                    count: Some(26),
                    window_secs: Some(900),
                    users: vec!["<!channel>".into(), "victim".into()],
                }),
            },
        );
        let msg = render(&summary, &[], None);
        check_shape(&msg).unwrap();
        let s = all_text(&msg);
        assert!(
            s.contains("*Users (2)*\\n```&lt;!channel&gt;, victim```"),
            "{s}"
        );
    }

    #[test]
    fn long_text_stays_within_the_limits() {
        let mut e = approved();
        let mut r = request();
        r.reason = "&".repeat(10_000);
        r.hosts = (0..2000).map(|i| format!("host-{i}")).collect();
        e.data.request = Some(r);
        let msg = render(&e, &vec!["@U0AAA".to_string(); 100], None);
        check_shape(&msg).unwrap();
    }

    #[test]
    fn the_shape_check_refuses_what_slack_would() {
        assert!(check_shape(&json!({"blocks": []})).is_err());
        let button = json!({"text": "t", "blocks": [{"type": "actions", "elements": []}]});
        assert!(check_shape(&button).unwrap_err().contains("\"actions\""));
        let long = json!({"text": "t", "blocks": [{"type": "header",
            "text": {"type": "plain_text", "text": "x".repeat(151)}}]});
        assert!(check_shape(&long).is_err());
        let link = json!({"text": "t", "blocks": [{"type": "section",
            "text": {"type": "mrkdwn", "text": "x", "verbatim": true}, "accessory": {"type": "button"}}]});
        assert!(
            check_shape(&link)
                .unwrap_err()
                .contains("no links or buttons")
        );
    }
}
