use super::*;
use crate::policy::Policy;

/// Unix seconds of an RFC 3339 instant.
fn t(s: &str) -> u64 {
    u64::try_from(s.parse::<Timestamp>().unwrap().as_second()).unwrap()
}

fn role_with(schedule: &str) -> String {
    format!(
        "[roles.r]\nhosts = [\"h\"]\nmax_duration = \"1h\"\nrequesters = [\"u\"]\napprovers = [\"v\"]\nschedule = {schedule}\n"
    )
}

fn schedule(windows: &str) -> Schedule {
    Policy::parse(&role_with(windows))
        .unwrap()
        .role("r")
        .unwrap()
        .schedule
        .clone()
        .unwrap()
}

fn errors(windows: &str) -> Vec<String> {
    Policy::parse(&role_with(windows)).unwrap_err()
}

#[test]
fn business_hours_in_berlin() {
    let s = schedule(r#"[{ days = ["mon-fri"], hours = "09:00-17:00", tz = "Europe/Berlin" }]"#);
    // Monday 2026-11-23: CET (+01:00), so 09:00 local is 08:00Z.
    assert!(!s.contains(t("2026-11-23T07:59:59Z")));
    assert!(s.contains(t("2026-11-23T08:00:00Z")));
    assert!(s.contains(t("2026-11-23T15:59:59Z")));
    assert!(!s.contains(t("2026-11-23T16:00:00Z")));
    // Saturday: never.
    assert!(!s.contains(t("2026-11-28T12:00:00Z")));
    // Friday after hours: the next window is Monday morning.
    assert_eq!(
        s.next_start(t("2026-11-27T16:30:00Z")),
        Some(NextStart {
            at: t("2026-11-30T08:00:00Z"),
            local: "Mon 2026-11-30 09:00 +01:00 (Europe/Berlin)".into()
        })
    );
    // Monday before hours: today.
    assert_eq!(
        s.next_start(t("2026-11-23T06:00:00Z")).unwrap().at,
        t("2026-11-23T08:00:00Z")
    );
    assert_eq!(s.spellings(), ["mon-fri 09:00-17:00 Europe/Berlin"]);
}

#[test]
fn a_window_across_midnight_belongs_to_the_day_it_starts() {
    let s = schedule(r#"[{ days = ["fri"], hours = "22:00-06:00", tz = "UTC" }]"#);
    assert!(!s.contains(t("2026-11-27T21:59:59Z")));
    assert!(s.contains(t("2026-11-27T22:00:00Z")));
    assert!(s.contains(t("2026-11-28T05:59:59Z")), "saturday morning");
    assert!(!s.contains(t("2026-11-28T06:00:00Z")));
    assert!(!s.contains(t("2026-11-28T23:00:00Z")), "saturday night");
    // Thursday night is not Friday's window.
    assert!(!s.contains(t("2026-11-27T01:00:00Z")));
    assert_eq!(
        s.next_start(t("2026-11-28T06:00:00Z")).unwrap().local,
        "Fri 2026-12-04 22:00 +00:00 (UTC)"
    );
}

#[test]
fn several_windows_are_a_union_across_zones() {
    let s = schedule(
        r#"[{ days = ["mon-fri"], hours = "09:00-17:00", tz = "Europe/Berlin" },
            { days = ["mon-fri"], hours = "09:00-17:00", tz = "America/New_York" }]"#,
    );
    // 16:30Z Monday: after Berlin's hours (17:30 CET), inside New York's (11:30 EST).
    assert!(s.contains(t("2026-11-23T16:30:00Z")));
    // 23:00Z Monday: after both; the next start is Berlin's Tuesday morning.
    assert_eq!(
        s.next_start(t("2026-11-23T23:00:00Z")).unwrap().local,
        "Tue 2026-11-24 09:00 +01:00 (Europe/Berlin)"
    );
    // 12:30Z Saturday: the next is Berlin's Monday 08:00Z, before New York's 14:00Z.
    assert_eq!(
        s.next_start(t("2026-11-28T12:30:00Z")).unwrap().at,
        t("2026-11-30T08:00:00Z")
    );
}

#[test]
fn spring_forward_a_window_starting_in_the_gap_opens_at_the_jump() {
    // Europe/Berlin, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z.
    let s = schedule(r#"[{ hours = "02:30-04:00", tz = "Europe/Berlin" }]"#);
    assert!(!s.contains(t("2026-03-29T00:59:59Z")), "01:59:59 CET");
    assert!(s.contains(t("2026-03-29T01:00:00Z")), "03:00 CEST");
    assert!(s.contains(t("2026-03-29T01:59:59Z")), "03:59:59 CEST");
    assert!(!s.contains(t("2026-03-29T02:00:00Z")), "04:00 CEST");
    assert_eq!(
        s.next_start(t("2026-03-29T00:30:00Z")),
        Some(NextStart {
            at: t("2026-03-29T01:00:00Z"),
            local: "Sun 2026-03-29 03:00 +02:00 (Europe/Berlin)".into()
        })
    );
    // The day after, the same window opens at 02:30 CEST = 00:30Z.
    assert_eq!(
        s.next_start(t("2026-03-29T02:00:00Z")).unwrap().at,
        t("2026-03-30T00:30:00Z")
    );
}

#[test]
fn a_window_wholly_inside_the_skipped_hour_does_not_happen_that_day() {
    // Europe/Berlin skips 02:00-03:00 on Sunday 2026-03-29.
    let s = schedule(r#"[{ days = ["sun"], hours = "02:15-02:45", tz = "Europe/Berlin" }]"#);
    for at in [
        "2026-03-29T00:59:59Z",
        "2026-03-29T01:00:00Z",
        "2026-03-29T01:30:00Z",
    ] {
        assert!(!s.contains(t(at)), "{at}");
    }
    // The next start is never an instant the window does not contain: a week later.
    assert_eq!(
        s.next_start(t("2026-03-28T12:00:00Z")).unwrap().local,
        "Sun 2026-04-05 02:15 +02:00 (Europe/Berlin)"
    );
}

#[test]
fn fall_back_the_repeated_hour_is_inside_twice_and_opens_at_the_first() {
    // Europe/Berlin, Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z.
    let s = schedule(r#"[{ days = ["sun"], hours = "02:00-03:00", tz = "Europe/Berlin" }]"#);
    assert!(!s.contains(t("2026-10-24T23:59:59Z")), "01:59:59 CEST");
    assert!(s.contains(t("2026-10-25T00:00:00Z")), "02:00 CEST");
    assert!(s.contains(t("2026-10-25T00:59:59Z")), "02:59:59 CEST");
    assert!(s.contains(t("2026-10-25T01:00:00Z")), "02:00 CET, again");
    assert!(s.contains(t("2026-10-25T01:59:59Z")), "02:59:59 CET");
    assert!(!s.contains(t("2026-10-25T02:00:00Z")), "03:00 CET");
    assert_eq!(
        s.next_start(t("2026-10-24T23:00:00Z")),
        Some(NextStart {
            at: t("2026-10-25T00:00:00Z"),
            local: "Sun 2026-10-25 02:00 +02:00 (Europe/Berlin)".into()
        })
    );
}

#[test]
fn next_start_across_a_dst_change_uses_the_new_offset() {
    // New York springs forward on Sunday 2026-03-08; Monday 09:00 is EDT (-04:00) = 13:00Z.
    let s = schedule(r#"[{ days = ["mon-fri"], hours = "09:00-17:00", tz = "America/New_York" }]"#);
    assert_eq!(
        s.next_start(t("2026-03-06T23:00:00Z")),
        Some(NextStart {
            at: t("2026-03-09T13:00:00Z"),
            local: "Mon 2026-03-09 09:00 -04:00 (America/New_York)".into()
        })
    );
    // The Friday before was EST (-05:00): 09:00 was 14:00Z.
    assert!(!s.contains(t("2026-03-06T13:30:00Z")));
    assert!(s.contains(t("2026-03-06T14:00:00Z")));
}

#[test]
fn days_wrap_and_an_end_of_24_00_is_midnight() {
    let s = schedule(r#"[{ days = ["fri-mon"], hours = "12:00-24:00", tz = "UTC" }]"#);
    for (at, inside) in [
        ("2026-11-27T12:00:00Z", true),  // fri
        ("2026-11-28T23:59:59Z", true),  // sat
        ("2026-11-29T00:00:00Z", false), // sun, before noon
        ("2026-11-30T13:00:00Z", true),  // mon
        ("2026-11-24T13:00:00Z", false), // tue
    ] {
        assert_eq!(s.contains(t(at)), inside, "{at}");
    }
    assert_eq!(s.spellings(), ["fri-mon 12:00-24:00 UTC"]);
    let all = schedule(r#"[{ tz = "UTC" }]"#);
    assert!(all.contains(t("2026-11-24T03:00:00Z")));
    assert_eq!(all.spellings(), ["every day all day UTC"]);
}

#[test]
fn parse_errors_name_the_role_the_window_and_the_field() {
    assert_eq!(
        errors(r#"[{ days = ["mnday"], hours = "09:00-17:00", tz = "UTC" }]"#),
        [
            "roles.r.schedule[0].days: \"mnday\" is not a day; use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri"
        ]
    );
    assert_eq!(
        errors(r#"[{ tz = "UTC" }, { hours = "9-17", tz = "Mars/Olympus" }]"#),
        [
            "roles.r.schedule[1].hours: \"9-17\" is not a range of hours; write HH:MM-HH:MM (e.g. \"09:00-17:00\", or \"22:00-06:00\" across midnight; 24:00 may end a range)",
            "roles.r.schedule[1].tz: \"Mars/Olympus\" is not a known IANA time zone (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")"
        ]
    );
    assert_eq!(
        errors(r#"[{ hours = "17:00-17:00", tz = "UTC" }]"#),
        [
            "roles.r.schedule[0].hours: \"17:00-17:00\" is empty (start and end are the same); for the whole day omit hours or write \"00:00-24:00\""
        ]
    );
    assert_eq!(
        errors(r#"[{ days = ["mon"] }]"#),
        [
            "roles.r.schedule[0].tz: is required: an IANA time zone such as \"Europe/Berlin\" or \"UTC\""
        ]
    );
    assert_eq!(
        errors("[]"),
        [
            "roles.r.schedule: is empty; omit schedule for any time, or give windows (e.g. schedule = [{ days = [\"mon-fri\"], hours = \"09:00-17:00\", tz = \"Europe/Berlin\" }])"
        ]
    );
    for bad in [
        "24:00-25:00",
        "09:60-10:00",
        "24:00-01:00",
        "0900-1000",
        "09:00",
    ] {
        let e = errors(&format!("[{{ hours = {bad:?}, tz = \"UTC\" }}]"));
        assert!(
            e[0].starts_with("roles.r.schedule[0].hours: "),
            "{bad}: {e:?}"
        );
    }
    assert!(
        errors(r#"[{ days = [], tz = "UTC" }]"#)[0]
            .starts_with("roles.r.schedule[0].days: is empty")
    );
    assert!(errors(r#"[{ tz = "UTC", colour = "red" }]"#)[0].contains("colour"));
}

proptest::proptest! {
    /// For any window and instant (over years with DST changes in several zones), the next
    /// start is later, inside the schedule, and nothing between is (checked every 10 min).
    #[test]
    fn the_next_start_is_the_first_instant_inside(
        day in 0usize..7,
        start in 0u16..48,
        len in 1u16..48,
        zone in 0usize..4,
        at in 1_767_225_600u64..1_830_297_600u64,
    ) {
        let zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"];
        let (start, end) = (start * 30, (start * 30 + len * 30) % 1440);
        let hours = format!("{:02}:{:02}-{:02}:{:02}", start / 60, start % 60,
            if end == 0 { 24 } else { end / 60 }, end % 60);
        let s = schedule(&format!(
            "[{{ days = [{:?}], hours = {hours:?}, tz = {:?} }}]",
            ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day],
            zones[zone]
        ));
        let next = s.next_start(at).unwrap();
        proptest::prop_assert!(next.at > at);
        proptest::prop_assert!(s.contains(next.at), "{hours} {next:?}");
        if !s.contains(at) {
            let mut probe = at;
            while probe + 600 < next.at {
                probe += 600;
                proptest::prop_assert!(!s.contains(probe), "{hours}: {probe} before {next:?}");
            }
        }
    }
}
