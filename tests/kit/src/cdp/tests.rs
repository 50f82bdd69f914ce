//! The driver against small local pages (chromium needed, as for the browser tests).
use super::*;

fn data_url(html: &str) -> String {
    format!(
        "data:text/html;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(html)
    )
}

#[test]
fn drives_a_page_fills_clicks_reads_and_screenshots() {
    let mut b = Browser::launch();
    assert_eq!(b.url(), "about:blank");
    let page = serve_html(
        "127.0.0.1",
        200,
        "<title>t</title><h1 id=h>Hello &lt;b&gt;</h1>\
         <form id=f method=get action=/next><input id=q name=q><button id=go>Go</button></form>",
    );
    b.goto(&format!("{page}/"));
    assert_eq!(b.status(), Some(200));
    assert_eq!(b.text("#h"), "Hello <b>");
    assert!(b.exists("#q") && !b.exists("#nope"));
    assert_eq!(b.eval("1 + 2"), json!(3));
    assert_eq!(b.eval("({a: [1, 'x']})"), json!({"a": [1, "x"]}));
    assert_eq!(b.eval("undefined"), Value::Null);
    b.fill("#q", "a b&c");
    b.click_and_wait("#go");
    assert_eq!(b.url(), format!("{page}/next?q=a+b%26c"));
    assert_eq!(b.status(), Some(200));
    // A link wrapped over two lines is clicked on its text, not between the lines.
    let wrapped = serve_html(
        "127.0.0.1",
        200,
        "<p style='width:9em'>some words before <a id=l href=/wrapped>a link over two lines</a></p>",
    );
    b.goto(&format!("{wrapped}/"));
    b.click_and_wait("#l");
    assert_eq!(b.url(), format!("{wrapped}/wrapped"));
    b.goto(&format!("{page}/again"));
    b.submit("#f");
    assert!(b.url().starts_with(&format!("{page}/next?q=")));
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x/shot.png");
    b.screenshot(&png);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian, at bytes 16..24.
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (WIDTH, HEIGHT));
}

#[test]
fn reports_statuses_and_data_urls_and_exceptions() {
    let mut b = Browser::launch();
    let missing = serve_html("127.0.0.1", 404, "<p id=m>not here</p>");
    b.goto(&format!("{missing}/x"));
    assert_eq!(b.status(), Some(404));
    assert_eq!(b.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(b.header("x-absent"), None);
    assert_eq!(b.text("#m"), "not here");
    // A framed page: its URL is listed.
    let framed = serve_html(
        "127.0.0.1",
        200,
        &format!("<iframe src='{missing}/inner'></iframe>"),
    );
    b.goto(&format!("{framed}/"));
    assert_eq!(b.child_frames(), vec![format!("{missing}/inner")]);
    b.goto(&data_url("<p id=p>data</p>"));
    assert_eq!(b.text("#p"), "data");
    let thrown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.eval("(() => { throw new Error('boom'); })()")
    }));
    assert!(thrown.is_err());
    // A page that moves itself on (a self-submitting form) is followed to where it goes.
    let target = serve_html("127.0.0.1", 201, "<p id=t>landed</p>");
    let auto = serve_html(
        "127.0.0.1",
        200,
        &format!(
            "<form id=f method=post action='{target}/in'><input name=a value=1></form>\
             <script>document.getElementById('f').submit()</script>"
        ),
    );
    let t = target.clone();
    b.navigate_to(&format!("{auto}/"), move |u| u.starts_with(&t));
    assert_eq!(b.status(), Some(201));
    assert_eq!(b.text("#t"), "landed");
}

#[test]
fn two_browsers_share_no_cookies() {
    let set = serve_with(
        "127.0.0.1",
        200,
        "Set-Cookie: c=v1; Path=/; HttpOnly; SameSite=Strict\r\n",
        "<p>set</p>",
    );
    let mut one = Browser::launch();
    one.goto(&format!("{set}/"));
    let c = one.cookies();
    let c = c.iter().find(|c| c.name == "c").expect("cookie c");
    assert_eq!(c.value, "v1");
    assert!(c.http_only);
    assert_eq!(c.same_site.as_deref(), Some("Strict"));
    let mut two = Browser::launch();
    two.goto("about:blank");
    assert!(two.cookies().is_empty(), "{:?}", two.cookies());
    two.goto(&format!("{set}/"));
    two.set_cookie(&format!("{set}/"), "copied", "x1");
    let names: Vec<String> = two.cookies().into_iter().map(|c| c.name).collect();
    assert!(names.contains(&"copied".to_string()), "{names:?}");
}

#[test]
fn a_missing_chromium_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(find_chromium(empty.path().as_os_str()), None);
    assert!(MISSING.contains("apt-get install chromium"));
    assert!(MISSING.contains("tests/install-deps.sh"));
    let fake = empty.path().join("chromium");
    std::fs::write(&fake, "").unwrap();
    assert_eq!(find_chromium(empty.path().as_os_str()), Some(fake));
}

#[test]
fn remembers_and_dismisses_dialogs() {
    let mut b = Browser::launch();
    assert!(b.dialogs().is_empty());
    b.goto(&data_url("<p id=p>x</p><script>alert('hi')</script>"));
    assert_eq!(b.text("#p"), "x");
    assert_eq!(b.dialogs(), ["hi".to_string()]);
}
