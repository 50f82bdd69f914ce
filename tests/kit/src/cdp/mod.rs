//! A real browser for the web page's tests: Debian's headless `chromium`, driven over the
//! Chrome DevTools Protocol (a WebSocket to 127.0.0.1, one flattened session on one page).
//!
//! [`Browser::launch`] starts `chromium --headless=new --remote-debugging-port=0` with its own
//! profile in a temporary directory (so two browsers share no cookies: a second `launch` is
//! the "other browser without the session"), reads the port from `DevToolsActivePort`, and
//! attaches to the page. Every wait is bounded and panics naming what it waited for; the
//! browser (its whole process group) is killed when the [`Browser`] is dropped.
//!
//! Chromium missing is a failure, never a skip: `apt-get install chromium` (or
//! `tests/install-deps.sh`). `JIT_CHROMIUM` names another binary.

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// How long the browser may take to start and open its DevTools port.
const LAUNCH: Duration = Duration::from_secs(60);
/// How long one DevTools command may take to answer.
const CALL: Duration = Duration::from_secs(30);
/// How long a navigation may take to load.
const LOAD: Duration = Duration::from_secs(30);
/// The viewport (and so the screenshots' size).
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 800;

/// Response headers: (lower-case name, value).
type Headers = Vec<(String, String)>;

/// A headless chromium with one page attached.
pub struct Browser {
    child: Child,
    /// Kills the browser's group if this process dies without dropping it (see [`Watchdog`]).
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
    status: Option<u16>,
    headers: Headers,
    dialogs: Vec<String>,
}

/// One cookie of the page, as `Network.getCookies` reports it.
#[derive(Debug, Clone)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: Option<String>,
    /// Seconds since the epoch; -1 for a session cookie.
    pub expires: f64,
}

/// What a machine without chromium is told (the browser tests fail with it, never skip).
pub const MISSING: &str = "the browser tests need Debian's chromium and it is not on PATH: \
     apt-get install chromium fonts-dejavu-core (or run tests/install-deps.sh), \
     or set JIT_CHROMIUM to the binary";

/// The chromium binary: `$JIT_CHROMIUM`, else `chromium` on PATH. Panics with [`MISSING`]
/// when there is none.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("JIT_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "JIT_CHROMIUM={} is not a file; {MISSING}",
            p.display()
        );
        return p;
    }
    find_chromium(&std::env::var_os("PATH").unwrap_or_default())
        .unwrap_or_else(|| panic!("{MISSING}"))
}

/// `chromium` (or `chromium-browser`) in the directories of `path` (a PATH value).
fn find_chromium(path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl Browser {
    /// Starts a fresh headless chromium (its own profile: no cookies) on about:blank.
    pub fn launch() -> Browser {
        let bin = chromium();
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(dir.path().join("chromium.log")).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--headless=new",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--password-store=basic",
            "--mute-audio",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
        ])
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("--user-data-dir={}", profile.display()));
        if is_root() {
            // Chromium refuses to run as root with its sandbox (CI runs the tests as root).
            cmd.arg("--no-sandbox");
        }
        cmd.arg("about:blank")
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group: Drop kills the browser and every helper process it forked.
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let watchdog = Watchdog::start(child.id());
        let mut launched = Launching {
            child: Some(child),
            dir: Some(dir),
        };
        let ws_url = launched.devtools_url(&profile);
        let mut ws = connect(&ws_url);
        let (child, dir) = launched.take();
        // The page chromium opened on about:blank.
        let deadline = Instant::now() + LAUNCH;
        let target = loop {
            let mut b = RawCall { ws: &mut ws, id: 0 };
            let targets = b.call("Target.getTargets", json!({}));
            let page = targets["targetInfos"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["targetId"].as_str().map(str::to_string));
            if let Some(p) = page {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "chromium opened no page target within {LAUNCH:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let session = RawCall { ws: &mut ws, id: 1 }.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )["sessionId"]
            .as_str()
            .expect("Target.attachToTarget: no sessionId")
            .to_string();
        let mut b = Browser {
            child,
            _watchdog: watchdog,
            dir,
            ws,
            session,
            next_id: 10,
            events: VecDeque::new(),
            status: None,
            headers: Vec::new(),
            dialogs: Vec::new(),
        };
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b.call("Network.enable", json!({}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// The browser's log (its stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default()
    }

    /// Sends a DevTools command to the page's session and returns its result; panics on a
    /// protocol error or when no answer comes within 30 s.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params, "sessionId": self.session});
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: send: {e}"));
        let deadline = Instant::now() + CALL;
        loop {
            let m = self.read(deadline, &format!("the answer to {method}"));
            if m["id"].as_u64() == Some(id) {
                if let Some(err) = m.get("error") {
                    panic!("DevTools {method} failed: {err}");
                }
                return m["result"].clone();
            }
            if m.get("method").is_some() {
                self.events.push_back(m);
            }
        }
    }

    fn read(&mut self, deadline: Instant, what: &str) -> Value {
        loop {
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}\n--- chromium log ---\n{}",
                    self.log()
                );
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let m: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("DevTools sent bad JSON ({e}): {t}"));
                    if m["method"] == "Page.javascriptDialogOpening" {
                        // A script ran alert()/confirm(): remembered for the test, and the page
                        // would stay blocked until it is answered.
                        self.dialogs
                            .push(m["params"]["message"].as_str().unwrap_or("").to_string());
                        self.next_id += 1;
                        let close = json!({"id": self.next_id, "method": "Page.handleJavaScriptDialog",
                            "params": {"accept": false}, "sessionId": self.session});
                        let _ = self.ws.send(Message::text(close.to_string()));
                    }
                    return m;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!(
                    "DevTools connection lost while waiting for {what}: {e}\n--- chromium log ---\n{}",
                    self.log()
                ),
            }
        }
    }

    /// The next event (queued or read) until `deadline`.
    fn next_event(&mut self, deadline: Instant, what: &str) -> Value {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        loop {
            let m = self.read(deadline, what);
            if m.get("method").is_some() {
                return m;
            }
        }
    }

    /// Runs `action` (which starts a navigation of the page: a click, a form submission, a
    /// `Page.navigate`), then waits until the main frame has navigated to a URL for which
    /// `to(url)` holds and that document has loaded. Records the HTTP status of that document
    /// ([`Browser::status`]). Panics after 30 s naming `what`.
    pub fn navigation(
        &mut self,
        what: &str,
        to: impl Fn(&str) -> bool,
        action: impl FnOnce(&mut Browser),
    ) {
        self.events.clear();
        self.status = None;
        self.headers.clear();
        action(self);
        let deadline = Instant::now() + LOAD;
        let waiting = format!("the page to load after {what}");
        let mut statuses: Vec<(String, u16, Headers)> = Vec::new();
        let mut arrived = false;
        loop {
            let e = self.next_event(deadline, &waiting);
            match e["method"].as_str().unwrap_or("") {
                "Network.responseReceived" if e["params"]["type"] == "Document" => {
                    let r = &e["params"]["response"];
                    if let (Some(url), Some(s)) = (r["url"].as_str(), r["status"].as_u64()) {
                        let headers = r["headers"]
                            .as_object()
                            .map(|h| {
                                h.iter()
                                    .map(|(k, v)| {
                                        (
                                            k.to_ascii_lowercase(),
                                            v.as_str().unwrap_or("").to_string(),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        statuses.push((url.to_string(), s as u16, headers));
                    }
                }
                "Page.frameNavigated" => {
                    let f = &e["params"]["frame"];
                    if f.get("parentId").is_none() {
                        let url = f["url"].as_str().unwrap_or("").to_string();
                        arrived = to(&url);
                        if arrived {
                            let doc = statuses.iter().rev().find(|(u, _, _)| *u == url);
                            self.status = doc.map(|(_, s, _)| *s);
                            self.headers = doc.map(|(_, _, h)| h.clone()).unwrap_or_default();
                        }
                    }
                }
                "Page.loadEventFired" if arrived => return,
                _ => {}
            }
        }
    }

    /// Navigates to `url` and waits for it to load.
    pub fn goto(&mut self, url: &str) {
        let target = url.to_string();
        let same = move |u: &str| u == target || u.trim_end_matches('/') == target;
        self.navigate_to(url, same);
    }

    /// Navigates to `url` and waits until the page has loaded a URL `to` accepts (where the
    /// page redirects, or itself moves on: a form that submits itself).
    pub fn navigate_to(&mut self, url: &str, to: impl Fn(&str) -> bool) {
        let u = url.to_string();
        self.navigation(&format!("navigating to {url}"), to, |b| {
            let r = b.call("Page.navigate", json!({"url": u}));
            if let Some(err) = r["errorText"].as_str() {
                panic!("navigating to {u} failed: {err}");
            }
        });
    }

    /// The HTTP status of the document the last awaited navigation loaded (None for
    /// about:blank; chromium reports 200 for a data: URL).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// A response header of that document (name in any case; several values of one header
    /// arrive joined by newlines, as chromium reports them).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The URL of every child frame of the page, as chromium reports it (a frame whose
    /// document was refused, by `frame-ancestors` or `X-Frame-Options`, shows chromium's
    /// error page URL instead of the one asked for).
    pub fn child_frames(&mut self) -> Vec<String> {
        let tree = self.call("Page.getFrameTree", json!({}));
        let mut out = Vec::new();
        let mut todo: Vec<Value> = tree["frameTree"]["childFrames"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        while let Some(f) = todo.pop() {
            out.push(f["frame"]["url"].as_str().unwrap_or("").to_string());
            todo.extend(f["childFrames"].as_array().cloned().unwrap_or_default());
        }
        out
    }

    /// Evaluates `js` in the page and returns its value as JSON (Null for undefined); panics
    /// with the exception's text when it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("JavaScript `{js}` threw: {ex}");
        }
        r["result"].get("value").cloned().unwrap_or(Value::Null)
    }

    /// Whether an element matches `selector`.
    pub fn exists(&mut self, selector: &str) -> bool {
        self.eval(&format!(
            "document.querySelector({}) !== null",
            js_str(selector)
        ))
        .as_bool()
        .unwrap_or(false)
    }

    /// The visible text of the first element matching `selector`; panics (with the page's
    /// URL and text) when there is none.
    pub fn text(&mut self, selector: &str) -> String {
        let v = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); return e === null ? null : e.innerText; }})()",
            js_str(selector)
        ));
        match v.as_str() {
            Some(t) => t.to_string(),
            None => panic!("no element `{selector}` on {}", self.describe()),
        }
    }

    /// The value of attribute `name` of the first element matching `selector`.
    pub fn attr(&mut self, selector: &str, name: &str) -> Option<String> {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); return e === null ? null : e.getAttribute({}); }})()",
            js_str(selector),
            js_str(name)
        ))
        .as_str()
        .map(str::to_string)
    }

    /// The page's URL and (the start of) its text, for failure messages.
    pub fn describe(&mut self) -> String {
        let url = self.url();
        let text = self
            .eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .chars()
            .take(2000)
            .collect::<String>();
        format!("{url} (status {:?}):\n{text}", self.status)
    }

    /// The page's current URL.
    pub fn url(&mut self) -> String {
        self.eval("location.href")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the element matching `selector` with the mouse (scrolled into view first), as
    /// a user would: at the middle of its first box (a link wrapped over two lines has
    /// nothing of its own at the middle of its bounding box). Use inside [`Browser::navigation`] when the click navigates, or
    /// [`Browser::click_and_wait`].
    pub fn click(&mut self, selector: &str) {
        let r = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (e === null) return null; \
             e.scrollIntoView({{block: 'center'}}); \
             const r = e.getClientRects()[0] || e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
            js_str(selector)
        ));
        let (Some(x), Some(y)) = (r[0].as_f64(), r[1].as_f64()) else {
            panic!(
                "cannot click `{selector}`: no such element on {}",
                self.describe()
            );
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Clicks `selector` and waits for the page it leads to (any URL) to load.
    pub fn click_and_wait(&mut self, selector: &str) {
        let s = selector.to_string();
        self.navigation(&format!("clicking {selector}"), |_| true, |b| b.click(&s));
    }

    /// Submits the form matching `selector` (`requestSubmit`: its submit event and
    /// validation run, as for a click) and waits for the page it leads to.
    pub fn submit(&mut self, selector: &str) {
        let s = selector.to_string();
        self.navigation(
            &format!("submitting {selector}"),
            |_| true,
            |b| {
                let ok = b.eval(&format!(
                    "(() => {{ const f = document.querySelector({}); if (f === null) return false; \
                     f.requestSubmit(); return true; }})()",
                    js_str(&s)
                ));
                if ok != Value::Bool(true) {
                    panic!("cannot submit `{s}`: no such form on {}", b.describe());
                }
            },
        );
    }

    /// Replaces the value of the input or textarea matching `selector` with `text`, typed
    /// (Input.insertText) into it after focusing it.
    pub fn fill(&mut self, selector: &str, text: &str) {
        let ok = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (e === null) return false; \
             e.focus(); e.value = ''; return true; }})()",
            js_str(selector)
        ));
        if ok != Value::Bool(true) {
            panic!(
                "cannot fill `{selector}`: no such field on {}",
                self.describe()
            );
        }
        self.call("Input.insertText", json!({"text": text}));
        let now = self.eval(&format!(
            "document.querySelector({}).value",
            js_str(selector)
        ));
        assert_eq!(
            now.as_str(),
            Some(text),
            "typing into `{selector}` did not set its value"
        );
    }

    /// A PNG of the viewport (1280x800) written to `path` (directories created).
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": false}),
        );
        let data = r["data"].as_str().expect("Page.captureScreenshot: no data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("Page.captureScreenshot: bad base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// The messages of every JavaScript dialog (alert, confirm, prompt) a page opened so far
    /// (each was dismissed).
    pub fn dialogs(&self) -> &[String] {
        &self.dialogs
    }

    /// Sets a cookie in this browser for `url` (e.g. a copied session cookie, to show the
    /// server no longer accepts it).
    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        let r = self.call(
            "Network.setCookie",
            json!({"url": url, "name": name, "value": value}),
        );
        assert_ne!(
            r["success"],
            json!(false),
            "Network.setCookie {name} for {url} failed"
        );
    }

    /// The cookies the browser would send to the page's URL.
    pub fn cookies(&mut self) -> Vec<Cookie> {
        let r = self.call("Network.getCookies", json!({}));
        r["cookies"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| Cookie {
                        name: c["name"].as_str().unwrap_or("").to_string(),
                        value: c["value"].as_str().unwrap_or("").to_string(),
                        path: c["path"].as_str().unwrap_or("").to_string(),
                        http_only: c["httpOnly"].as_bool().unwrap_or(false),
                        secure: c["secure"].as_bool().unwrap_or(false),
                        same_site: c["sameSite"].as_str().map(str::to_string),
                        expires: c["expires"].as_f64().unwrap_or(-1.0),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask it to quit (it closes its helpers), then make sure: kill its process group.
        self.next_id += 1;
        let msg = json!({"id": self.next_id, "method": "Browser.close"});
        let _ = self.ws.send(Message::text(msg.to_string()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill_group(&mut self.child);
    }
}

fn kill_group(child: &mut Child) {
    // The group's id is the browser's own PID (process_group(0) at spawn).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A shell that kills the browser's process group once this test process is gone.
///
/// [`Browser`]'s `Drop` kills the group on every normal end, a failed assertion included
/// (the panic unwinds). What `Drop` cannot cover is this process dying without unwinding: a
/// SIGKILL (a CI timeout), or a SIGINT (^C) to the foreground group, which chromium, in its
/// own group, does not receive. The watchdog, in a group of its own too, polls this
/// process every second and then kills the browser's group. Residual case: if the watchdog
/// is killed as well (say, `kill -9` of every process of the session or container), a
/// headless chromium is left running until its machine or container goes.
struct Watchdog(Option<Child>);

impl Watchdog {
    fn start(browser: u32) -> Watchdog {
        let me = std::process::id().to_string();
        let child = Command::new("sh")
            .args([
                "-c",
                "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; kill -9 \"-$2\" 2>/dev/null",
                "jit-browser-watchdog",
                &me,
                &browser.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok();
        Watchdog(child)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // The browser is gone (or going) by our own hand: the watchdog and its `sleep` go.
        if let Some(c) = self.0.as_mut() {
            kill_group(c);
        }
    }
}

/// The browser while it starts: killed if the start fails.
struct Launching {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Launching {
    fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("chromium.log")).ok())
            .unwrap_or_default()
    }

    /// Waits for `DevToolsActivePort` (line 1: the port, line 2: the browser's path).
    fn devtools_url(&mut self, profile: &Path) -> String {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH;
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next())
                    && port.parse::<u16>().is_ok()
                {
                    return format!("ws://127.0.0.1:{port}{path}");
                }
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!(
                    "chromium exited ({st}) before opening its DevTools port\n--- chromium log ---\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not write {} within {LAUNCH:?}\n--- chromium log ---\n{}",
                file.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn take(&mut self) -> (Child, tempfile::TempDir) {
        (self.child.take().unwrap(), self.dir.take().unwrap())
    }
}

impl Drop for Launching {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            kill_group(c);
        }
    }
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let stream = TcpStream::connect(&addr)
        .unwrap_or_else(|e| panic!("cannot connect to chromium's DevTools at {addr}: {e}"));
    stream.set_read_timeout(Some(CALL)).unwrap();
    let (ws, _) = tungstenite::client(url, stream)
        .unwrap_or_else(|e| panic!("DevTools WebSocket handshake with {url} failed: {e}"));
    // Reads now return every 200 ms so each wait checks its own deadline.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    ws
}

/// Browser-level calls before the page session exists.
struct RawCall<'a> {
    ws: &'a mut WebSocket<TcpStream>,
    id: u64,
}

impl RawCall<'_> {
    fn call(&mut self, method: &str, params: Value) -> Value {
        let msg = json!({"id": self.id, "method": method, "params": params});
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: send: {e}"));
        let deadline = Instant::now() + CALL;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the answer to {method}"
            );
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let m: Value = serde_json::from_str(t.as_str()).unwrap();
                    if m["id"].as_u64() == Some(self.id) {
                        if let Some(err) = m.get("error") {
                            panic!("DevTools {method} failed: {err}");
                        }
                        return m["result"].clone();
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!("DevTools connection lost waiting for {method}: {e}"),
            }
        }
    }
}

/// `s` as a JavaScript string literal.
pub fn js_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A tiny HTTP server on `ip` (any free port) answering every request with `status` and the
/// HTML `body`: a page from another origin (a cross-site attacker's page) or a fixed status.
/// It runs until the process ends. Returns its origin (`http://IP:PORT`).
pub fn serve_html(ip: &str, status: u16, body: &str) -> String {
    serve_with(ip, status, "", body)
}

/// [`serve_html`] with `headers` (each line ending in `\r\n`) added to every answer. Each
/// connection gets its own thread: chromium opens spare connections that never send a
/// request, and a one-at-a-time server would wait on one of those.
pub fn serve_with(ip: &str, status: u16, headers: &str, body: &str) -> String {
    let listener = TcpListener::bind((ip, 0))
        .unwrap_or_else(|e| panic!("cannot listen on {ip} for a test page: {e}"));
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let body = body.to_string();
    let headers = headers.to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let body = body.clone();
            let headers = headers.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut rest = vec![0u8; len];
                let _ = r.read_exact(&mut rest);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: text/html; charset=utf-8\r\n{headers}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    origin
}

#[cfg(test)]
mod tests;
