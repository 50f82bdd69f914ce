//! The audit page's data (issue 16): search with filters and paging, the chain's status
//! (incremental verification, tampering found and named), the checkpoint, the exports.

use jit_ca::audit::Record;
use jit_ca::service::audit_view::{AuditParams, AuditQuery, FULL_REVERIFY_SECS};
use jit_test_kit::harness::*;
use serde_json::Value;

fn query(f: impl FnOnce(&mut AuditParams)) -> AuditQuery {
    let mut p = AuditParams::default();
    f(&mut p);
    AuditQuery::parse(&p).unwrap()
}

fn events(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r.event.clone(), r.actor.clone()))
        .collect()
}

/// The data directory's database with its append-only triggers dropped, as someone with
/// the file could.
fn tamper(h: &Harness, sql: &str) {
    let db = h.db();
    db.unguard_audit();
    db.batch(sql);
}

/// alice asks for db-admin, bob approves (request, approval, issuance); dave asks for
/// two-man (pending). Returns the two request ids.
async fn trail(h: &Harness) -> (String, String) {
    let (s, v) = h.request("alice", "db-admin", 1800, "INC-1 disk").await;
    assert_eq!(s, 201, "{v}");
    let a = v["id"].as_str().unwrap().to_string();
    h.clock.advance(60);
    assert_eq!(h.approve("bob", &a).await.0, 200);
    h.clock.advance(60);
    let (s, v) = h.request("dave", "two-man", 1800, "INC-2 deploy").await;
    assert_eq!(s, 201, "{v}");
    (a, v["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn filters_by_user_role_event_and_time_newest_first() {
    let h = Harness::new();
    let (a, d) = trail(&h).await;
    let page = h.ca.audit_search(&query(|_| {})).unwrap();
    let seqs: Vec<u64> = page.records.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(page.next_before, None, "one page holds the whole trail");

    // alice: her request, bob's approval of it and the issuance (records of her request),
    // not dave's.
    let p =
        h.ca.audit_search(&query(|p| p.user = Some("alice".into())))
            .unwrap();
    let got = events(&p.records);
    assert!(got.contains(&("request".into(), "alice".into())), "{got:?}");
    assert!(got.contains(&("approval".into(), "bob".into())), "{got:?}");
    assert!(got.iter().any(|(e, _)| e == "issuance"), "{got:?}");
    // ... and her registration (details.user), nothing else.
    assert!(
        got.contains(&("user_add".into(), "admin:uid=0".into())),
        "{got:?}"
    );
    assert!(
        p.records.iter().all(|r| r.actor == "alice"
            || r.details.contains(&a)
            || r.details.contains("\"user\":\"alice\"")),
        "{got:?}"
    );
    assert!(!p.records.iter().any(|r| r.details.contains(&d)));
    // bob: his approval and his registration.
    let p =
        h.ca.audit_search(&query(|p| p.user = Some("bob".into())))
            .unwrap();
    assert_eq!(
        events(&p.records),
        [
            ("approval".to_string(), "bob".to_string()),
            ("user_add".to_string(), "admin:uid=0".to_string())
        ]
    );

    // Role: every record of two-man's request.
    let p =
        h.ca.audit_search(&query(|p| p.role = Some("two-man".into())))
            .unwrap();
    assert!(!p.records.is_empty());
    assert!(p.records.iter().all(|r| r.details.contains(&d)));

    // Event and time (RFC 3339 and Unix seconds).
    let p =
        h.ca.audit_search(&query(|p| p.event = Some("request".into())))
            .unwrap();
    assert_eq!(
        events(&p.records),
        [
            ("request".to_string(), "dave".to_string()),
            ("request".to_string(), "alice".to_string())
        ]
    );
    let p =
        h.ca.audit_search(&query(|p| {
            p.event = Some("request".into());
            p.since = Some("2026-11-23T12:01:30Z".into());
        }))
        .unwrap();
    assert_eq!(
        events(&p.records),
        [("request".to_string(), "dave".to_string())]
    );
    let p =
        h.ca.audit_search(&query(|p| {
            p.event = Some("request".into());
            p.until = Some((T0 + 30).to_string());
        }))
        .unwrap();
    assert_eq!(
        events(&p.records),
        [("request".to_string(), "alice".to_string())]
    );
    // Nobody: nothing.
    let p =
        h.ca.audit_search(&query(|p| p.user = Some("nobody".into())))
            .unwrap();
    assert!(p.records.is_empty());
}

#[tokio::test]
async fn pages_follow_each_other_by_seq_without_gaps_or_repeats() {
    let h = Harness::new();
    trail(&h).await;
    let all = h.ca.audit_search(&query(|_| {})).unwrap().records;
    assert!(all.len() >= 5, "{}", all.len());
    let mut seen = Vec::new();
    let mut q = query(|p| p.limit = Some("2".into()));
    loop {
        let page = h.ca.audit_search(&q).unwrap();
        assert!(page.records.len() <= 2);
        seen.extend(page.records.iter().map(|r| r.seq));
        match page.next_before {
            Some(b) => q.before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|r| r.seq).collect::<Vec<_>>());
    // A cursor past the head starts at the head; before=1 is an empty last page.
    let q = query(|p| p.before = Some("999999".into()));
    assert_eq!(h.ca.audit_search(&q).unwrap().records.len(), all.len());
    let q = query(|p| p.before = Some("1".into()));
    let page = h.ca.audit_search(&q).unwrap();
    assert!(page.records.is_empty() && page.next_before.is_none());
}

#[tokio::test]
async fn the_export_streams_every_match_in_the_cli_shape() {
    let h = Harness::new();
    trail(&h).await;
    let mut lines = Vec::new();
    let n =
        h.ca.audit_export(&query(|p| p.limit = Some("1".into())), |r| {
            lines.push(jit_ca::audit::export::json_value(r));
            true
        })
        .unwrap();
    // The page size does not cut an export; the records are those of `jit-ca audit export
    // --json`, newest first.
    let mut cli = jit_ca::admin::audit_export(&h.path()).unwrap();
    cli.reverse();
    assert_eq!(n as usize, cli.len());
    assert_eq!(lines, cli);
    // The consumer can stop it (a client that went away).
    let mut k = 0;
    let n =
        h.ca.audit_export(&query(|_| {}), |_| {
            k += 1;
            k < 2
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_chain_is_verified_incrementally_and_tampering_is_named() {
    let h = Harness::new();
    trail(&h).await;
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact, "{s:?}");
    let head = jit_ca::admin::audit_export(&h.path()).unwrap().len() as u64;
    assert_eq!(s.verified, head);
    // New records: the next view verifies them too.
    h.ca.audit(
        "admin:0",
        jit_ca::audit::event::USER_ADD,
        serde_json::json!({"user": "x"}),
    )
    .unwrap();
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact && s.verified == head + 1, "{s:?}");

    // An edit of a record appended after the last view: named at the next view.
    h.ca.audit(
        "admin:0",
        jit_ca::audit::event::USER_ADD,
        serde_json::json!({"user": "y"}),
    )
    .unwrap();
    tamper(
        &h,
        &format!(
            "UPDATE audit SET actor = 'mallory' WHERE seq = {}",
            head + 2
        ),
    );
    let s = h.ca.audit_chain_status().unwrap();
    assert!(!s.intact, "{s:?}");
    assert_eq!(s.bad_record, Some(head + 2));
    assert!(s.problem.as_deref().unwrap().contains("altered"), "{s:?}");
    // It stays broken.
    assert!(!h.ca.audit_chain_status().unwrap().intact);
}

#[tokio::test]
async fn a_rewritten_or_cut_tail_and_old_edits_are_found() {
    // The verified head changed: found at the next view without re-hashing.
    let h = Harness::new();
    trail(&h).await;
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact);
    let head = s.verified;
    tamper(
        &h,
        &format!(
            "UPDATE audit SET hash = '{}' WHERE seq = {head}",
            "f".repeat(64)
        ),
    );
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(head)), "{s:?}");

    // A cut tail.
    let h = Harness::new();
    trail(&h).await;
    let head = h.ca.audit_chain_status().unwrap().verified;
    tamper(&h, &format!("DELETE FROM audit WHERE seq = {head}"));
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(head)), "{s:?}");
    assert!(s.problem.unwrap().contains("missing"));

    // An edit of a record verified earlier: the hourly full verification finds it.
    let h = Harness::new();
    trail(&h).await;
    assert!(h.ca.audit_chain_status().unwrap().intact);
    tamper(&h, "UPDATE audit SET details = '{}' WHERE seq = 2");
    h.clock.advance(FULL_REVERIFY_SECS);
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(2)), "{s:?}");
}

/// The `alert` records of kind `checkpoint_failure`.
fn chain_alerts(h: &Harness) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == "alert" && r["details"]["kind"] == "checkpoint_failure")
        .collect()
}

#[tokio::test]
async fn a_cut_tail_stays_broken_after_a_new_checkpoint_and_the_hourly_check_and_alerts_once() {
    let h = Harness::new();
    trail(&h).await;
    let n = h.ca.audit_chain_status().unwrap().verified;
    assert!(n > 2);
    // Someone with write access deletes the newest record; the CA then signs a checkpoint
    // over the shortened head (it was quiet for a tick).
    tamper(&h, &format!("DELETE FROM audit WHERE seq = {n}"));
    h.clock.advance(10);
    h.ca.refresh_checkpoint().unwrap();
    h.clock.advance(10);
    h.ca.refresh_checkpoint().unwrap();
    assert_eq!(h.ca.audit_checkpoint().unwrap().seq, n - 1);
    // The first view after the hourly full verification: records 1..n-1 verify, and the
    // checkpoint names n-1; record n was verified earlier and is gone.
    h.clock.advance(FULL_REVERIFY_SECS);
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(n)), "{s:?}");
    // The finding is recorded and notified once: an alert of kind checkpoint_failure.
    let a = chain_alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    let summary = a[0]["details"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("broken") && summary.contains(&format!("record {n}")),
        "{summary}"
    );
    // It stays broken: more views, another hour, another checkpoint; no second alert.
    for _ in 0..2 {
        h.clock.advance(FULL_REVERIFY_SECS);
        h.ca.refresh_checkpoint().unwrap();
        h.clock.advance(10);
        h.ca.refresh_checkpoint().unwrap();
        let s = h.ca.audit_chain_status().unwrap();
        assert_eq!((s.intact, s.bad_record), (false, Some(n)), "{s:?}");
    }
    assert_eq!(chain_alerts(&h).len(), 1);
}

#[tokio::test]
async fn a_break_found_at_once_also_alerts_once_and_stays() {
    let h = Harness::new();
    trail(&h).await;
    assert!(h.ca.audit_chain_status().unwrap().intact);
    tamper(&h, "UPDATE audit SET details = '{}' WHERE seq = 2");
    h.clock.advance(FULL_REVERIFY_SECS);
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(2)), "{s:?}");
    assert_eq!(chain_alerts(&h).len(), 1);
    h.clock.advance(FULL_REVERIFY_SECS * 3);
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(2)), "{s:?}");
    assert_eq!(chain_alerts(&h).len(), 1);
}

#[tokio::test]
async fn a_signed_checkpoint_is_shown_and_checked_against_the_trail() {
    let h = Harness::new();
    trail(&h).await;
    h.clock.advance(10);
    h.ca.refresh_checkpoint().unwrap();
    let cp = h.ca.audit_checkpoint().expect("a checkpoint");
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact, "{s:?}");
    assert_eq!(cp.seq, s.verified);
    // A re-chained rewrite passes the chain but not the checkpoint: recompute the chain
    // from record 1 with an edited actor.
    let c = h.db();
    c.unguard_audit();
    let rows: Vec<(u64, u64, String, String, String)> = c
        .run(
            "SELECT seq, time, actor, event, details FROM audit ORDER BY seq",
            &[],
        )
        .into_iter()
        .map(|r| {
            let r: Vec<String> = r.into_iter().map(Option::unwrap).collect();
            (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].clone(),
                r[3].clone(),
                r[4].clone(),
            )
        })
        .collect();
    let mut prev = jit_ca::audit::GENESIS.to_string();
    for (seq, time, actor, event, details) in rows {
        let actor = if seq == 1 {
            "mallory".to_string()
        } else {
            actor
        };
        let hash = jit_ca::audit::hash(&prev, seq, time, &actor, &event, &details);
        c.run(
            "UPDATE audit SET actor = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            jit_test_kit::sql_params![actor, &prev, &hash, seq],
        );
        prev = hash;
    }
    // A fresh view (a restarted service would verify from record 1): the chain verifies,
    // the checkpoint does not.
    h.clock.advance(FULL_REVERIFY_SECS);
    let s = h.ca.audit_chain_status().unwrap();
    assert!(!s.intact, "{s:?}");
    assert_eq!(s.bad_record, Some(cp.seq));
    assert!(s.problem.unwrap().contains("signed checkpoint"));
}

// ---- the page and its exports, through the router with a session cookie ----

/// The kit's policy with carol as the one auditor.
fn auditor_harness() -> Harness {
    Harness::with_policy(&format!("auditors = [\"carol\"]\n{POLICY}"))
}

/// `jit web` then the login, as `user`: the session cookie's value.
async fn cookie(h: &Harness, user: &str) -> String {
    let (status, v) = h
        .call(user, "POST", "/v1/web/login", serde_json::json!({}))
        .await;
    assert_eq!(status.as_u16(), 200, "{v}");
    let path = v["path"].as_str().unwrap();
    let token = &path["/ui/login?token=".len()..];
    let (_, secret) = h.ca.web_login(token, None).unwrap();
    secret
}

async fn get_as(h: &Harness, secret: &str, path: &str) -> (u16, String, axum::http::HeaderMap) {
    let req = axum::http::Request::builder()
        .method("GET")
        .uri(path)
        .header("cookie", format!("jit_session={secret}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (s, body, headers) = h.send(req).await;
    (s.as_u16(), String::from_utf8(body).unwrap(), headers)
}

/// The text of the element with `id` (up to its first `<`).
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    let end = start + html[start..].find('<').unwrap();
    html[start..end].to_string()
}

/// The `tr id="audit-SEQ"` rows of table#audit, as seqs.
fn rows_of(html: &str) -> Vec<u64> {
    html.split("<tr id=\"audit-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// RFC 4180 records of `text` (quoted cells, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("a bare LF ends no record in RFC 4180"),
            (false, c) => cell.push(c),
        }
    }
    assert!(cell.is_empty() && row.is_empty(), "no CRLF at the end");
    rows
}

#[tokio::test]
async fn the_audit_page_is_for_auditors_only_and_refusals_are_audited() {
    let h = auditor_harness();
    trail(&h).await;
    let bob = cookie(&h, "bob").await;
    // A non-auditor's navigation does not offer the audit page.
    let (s, body, _) = get_as(&h, &bob, "/ui/pending").await;
    assert_eq!(s, 200, "{body}");
    assert!(!body.contains("href=\"/ui/audit\""), "{body}");
    for path in ["/ui/audit", "/ui/audit.csv", "/ui/audit.json?user=alice"] {
        let mut req = axum::http::Request::builder()
            .method("GET")
            .uri(path)
            .header("cookie", format!("jit_session={bob}"))
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [192, 0, 2, 9],
                40000,
            ))));
        let (s, body, _) = h.send(req).await;
        let (s, body) = (s.as_u16(), String::from_utf8(body).unwrap());
        assert_eq!(s, 403, "{path}: {body}");
        assert!(body.contains("`auditors`"), "{path}: {body}");
        assert!(
            !body.contains("id=\"audit\"") && !body.contains("INC-1"),
            "{body}"
        );
    }
    let refused: Vec<Value> = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == "access_refused" && r["actor"] == "bob")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(refused[0]["details"]["path"], "/ui/audit");
    assert_eq!(refused[0]["details"]["code"], "forbidden");
    // Where the probe came from, as for every other web refusal.
    assert!(
        refused
            .iter()
            .all(|r| r["details"]["source"] == "192.0.2.9"),
        "{refused:?}"
    );
    // Without a session: the login page, nothing else.
    let (s, body, _) = h.get("/ui/audit.csv", None).await;
    assert_eq!(s.as_u16(), 401);
    assert!(!String::from_utf8(body).unwrap().contains("seq,time"));

    let carol = cookie(&h, "carol").await;
    let (s, body, headers) = get_as(&h, &carol, "/ui/audit").await;
    assert_eq!(s, 200, "{body}");
    assert!(
        text_of(&body, "chain-status").starts_with("intact"),
        "{body}"
    );
    assert!(body.contains("id=\"checkpoint\""));
    assert!(body.contains("<table id=\"audit\">"));
    // An auditor's navigation offers it.
    assert!(body.contains("href=\"/ui/audit\""), "{body}");
    assert!(
        body.contains("id=\"export-csv\" href=\"/ui/audit.csv\""),
        "{body}"
    );
    assert!(
        body.contains("id=\"export-json\" href=\"/ui/audit.json\""),
        "{body}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let all = jit_ca::admin::audit_export(&h.path()).unwrap().len() as u64;
    // Newest first: the head (carol's own login records included) down to record 1.
    let rows = rows_of(&body);
    assert_eq!(rows.first(), Some(&all), "{rows:?}");
    assert_eq!(rows.last(), Some(&1));
}

#[tokio::test]
async fn the_page_filters_and_names_a_bad_filter() {
    let h = auditor_harness();
    let (a, _) = trail(&h).await;
    let carol = cookie(&h, "carol").await;
    let (s, body, _) = get_as(&h, &carol, "/ui/audit?user=alice&event=request").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(rows_of(&body).len(), 1, "{body}");
    assert!(
        body.contains(&format!("href=\"/ui/requests/{a}\"")),
        "{body}"
    );
    // The export links carry the filters.
    assert!(
        body.contains("href=\"/ui/audit.csv?user=alice&#38;event=request\""),
        "{body}"
    );
    // Paging: one per page, the older link continues below the shown record.
    let (_, body, _) = get_as(&h, &carol, "/ui/audit?event=request&limit=1").await;
    let first = rows_of(&body);
    assert_eq!(first.len(), 1);
    assert!(
        body.contains(&format!(
            "id=\"older\" href=\"/ui/audit?event=request&#38;limit=1&#38;before={}\"",
            first[0]
        )),
        "{body}"
    );
    let (_, body, _) = get_as(
        &h,
        &carol,
        &format!("/ui/audit?event=request&limit=1&before={}", first[0]),
    )
    .await;
    let second = rows_of(&body);
    assert_eq!(second.len(), 1);
    assert!(second[0] < first[0]);
    // A bad filter: 400, the form and the reason, no rows.
    let (s, body, _) = get_as(&h, &carol, "/ui/audit?since=yesterday&user=alice").await;
    assert_eq!(s, 400, "{body}");
    let err = text_of(&body, "error");
    assert!(err.contains("since") && err.contains("RFC 3339"), "{err}");
    assert!(body.contains("name=\"user\" value=\"alice\""), "{body}");
    assert!(rows_of(&body).is_empty());
}

#[tokio::test]
async fn the_csv_export_quotes_as_rfc_4180_and_defuses_formulas() {
    let h = auditor_harness();
    let (s, v) = h
        .request("alice", "db-admin", 1800, "INC-3 say \"hi\", =1+1 @now")
        .await;
    assert_eq!(s, 201, "{v}");
    // A record whose actor a spreadsheet would run (only someone with the file can write
    // one; the export must still be safe to open).
    let head = jit_ca::admin::audit_export(&h.path()).unwrap().len();
    tamper(
        &h,
        &format!(
            "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) VALUES ({}, {T0}, '=2+3', 'request', '{{}}', 'x', 'y')",
            head + 1
        ),
    );
    let carol = cookie(&h, "carol").await;
    let (s, body, headers) = get_as(&h, &carol, "/ui/audit.csv").await;
    assert_eq!(s, 200, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{headers:?}"
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"jit-audit-"),
        "{headers:?}"
    );
    let rows = parse_csv(&body);
    assert_eq!(
        rows[0],
        [
            "seq",
            "time",
            "time_utc",
            "actor",
            "event",
            "details",
            "prev_hash",
            "hash"
        ]
    );
    let records = jit_ca::admin::audit_export(&h.path()).unwrap();
    assert_eq!(rows.len(), records.len() + 1);
    // Every cell is the record's value (details: the stored JSON text), newest first.
    for (row, rec) in rows[1..].iter().zip(records.iter().rev()) {
        assert_eq!(row[0], rec["seq"].to_string());
        let actor = rec["actor"].as_str().unwrap();
        if actor.starts_with('=') {
            assert_eq!(row[3], format!("'{actor}"));
        } else {
            assert_eq!(row[3], actor);
        }
        let details: Value = serde_json::from_str(&row[5]).unwrap();
        assert_eq!(details, rec["details"]);
    }
    assert!(body.contains("'=2+3"), "{body}");
    // The reason inside the details JSON (its quotes escaped by JSON, then doubled).
    assert!(body.contains(r#"say \""hi\"", =1+1 @now"#), "{body}");
}

#[tokio::test]
async fn the_json_export_is_the_cli_records_as_json_lines_with_the_filters() {
    let h = auditor_harness();
    let (a, _) = trail(&h).await;
    let carol = cookie(&h, "carol").await;
    let (s, body, headers) = get_as(&h, &carol, "/ui/audit.json?role=db-admin").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let got: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want: Vec<Value> = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["details"]["request_id"] == a.as_str())
        .collect();
    want.reverse();
    assert_eq!(got, want);
    assert!(body.ends_with('\n'));
    // A bad filter: an error page, not a download.
    let (s, body, _) = get_as(&h, &carol, "/ui/audit.json?event=nope").await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("not an audit event"), "{body}");
}

#[tokio::test]
async fn the_page_shows_a_tampered_chain_as_broken_naming_the_record() {
    let h = auditor_harness();
    trail(&h).await;
    let carol = cookie(&h, "carol").await;
    let (_, body, _) = get_as(&h, &carol, "/ui/audit").await;
    assert!(
        text_of(&body, "chain-status").starts_with("intact"),
        "{body}"
    );
    // Edit a record appended after that view (the next view verifies it).
    h.ca.audit(
        "admin:0",
        jit_ca::audit::event::USER_ADD,
        serde_json::json!({"user": "z"}),
    )
    .unwrap();
    let seq = jit_ca::admin::audit_export(&h.path()).unwrap().len();
    tamper(
        &h,
        &format!("UPDATE audit SET details = '{{\"user\":\"mallory\"}}' WHERE seq = {seq}"),
    );
    let (s, body, _) = get_as(&h, &carol, "/ui/audit").await;
    assert_eq!(s, 200, "{body}");
    let status = text_of(&body, "chain-status");
    assert!(
        status.starts_with(&format!("broken: first bad record {seq}:")),
        "{status}"
    );
    assert!(status.contains("altered"), "{status}");
}

/// Appends `n` records of about 20 KiB each straight into the file (their chain is not
/// valid: only the exports read them here).
fn bulk(h: &Harness, n: u64) {
    let c = h.db();
    let head: u64 = c.one("SELECT MAX(seq) FROM audit", &[]);
    let details = serde_json::json!({"reason": "x".repeat(20_000)}).to_string();
    for seq in head + 1..=head + n {
        c.run(
            "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) VALUES (?1, 1795435200, 'admin:0', 'user_add', ?2, 'p', 'h')",
            jit_test_kit::sql_params![seq, &details],
        );
    }
}

async fn open_export(h: &Harness, secret: &str) -> axum::response::Response {
    use tower::ServiceExt as _;
    let req = axum::http::Request::builder()
        .method("GET")
        .uri("/ui/audit.csv")
        .header("cookie", format!("jit_session={secret}"))
        .body(axum::body::Body::empty())
        .unwrap();
    h.app.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn at_most_two_exports_run_at_once_and_a_third_is_told_to_retry() {
    let h = auditor_harness();
    trail(&h).await;
    // Far more than the chunks in flight: an unread export keeps its reader busy.
    bulk(&h, 60);
    let carol = cookie(&h, "carol").await;
    let a = open_export(&h, &carol).await;
    let b = open_export(&h, &carol).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let c = open_export(&h, &carol).await;
    assert_eq!(c.status().as_u16(), 503);
    assert_eq!(c.headers()["retry-after"], "5");
    let body = axum::body::to_bytes(c.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("export"),
        "{body:?}"
    );
    // Pages are not held up by the exports.
    let (s, body, _) = get_as(&h, &carol, "/ui/audit").await;
    assert_eq!(s, 200, "{body}");
    // A client that goes away frees its slot.
    drop(a);
    let mut ok = false;
    for _ in 0..100 {
        let r = open_export(&h, &carol).await;
        if r.status() == 200 {
            let all = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            assert!(all.len() > 60 * 20_000);
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "the slot of a dropped export was not freed");
    drop(b);
}

#[test]
fn audit_scans_and_verification_use_their_own_read_connection() {
    let h = Harness::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(trail(&h));
    let ca = h.ca.clone();
    // With every general read connection busy (signed calls authenticate on them), the audit
    // page's reads still run, and do not queue behind them.
    let (tx, rx) = std::sync::mpsc::channel();
    h.ca.hold_read_connections_for_test(|| {
        std::thread::spawn(move || {
            let s = ca.audit_chain_status().map(|s| s.intact);
            let n = ca.audit_search(&query(|_| {})).map(|p| p.records.len());
            let _ = tx.send((s, n));
        });
        let (s, n) = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the audit page waited for the general read connections");
        assert!(s.unwrap());
        assert!(n.unwrap() > 0);
    });
}
