//! The test's hands on the webview: elements by `data-testid`, explicit waits for conditions
//! (small polls, never fixed sleeps), clicks, typing, JavaScript, and screenshots saved to the
//! artifacts dir.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(50);

/// CSS selector of a `data-testid`.
pub fn by_testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

pub struct Ui {
    client: Client,
    artifacts: PathBuf,
    /// The X display the app is on: screenshots are taken from it.
    display: String,
}

/// The title of the app's window (what screenshots capture).
const WINDOW_TITLE: &str = "Purser";

impl Ui {
    pub fn new(client: Client, artifacts: PathBuf, display: String) -> Ui {
        Ui { client, artifacts, display }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn artifacts(&self) -> &PathBuf {
        &self.artifacts
    }

    /// Polls `check` until it yields `Some` (or fails after `timeout`, naming `what`).
    pub async fn wait<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(format!("waited {timeout:?} for {what}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching the CSS selector, once it exists.
    pub async fn wait_css(&self, css: &str, timeout: Duration) -> Result<Element, String> {
        self.wait(&format!("element {css}"), timeout, || async { self.client.find(Locator::Css(css)).await.ok() }).await
    }

    pub async fn wait_for_testid(&self, id: &str, timeout: Duration) -> Result<Element, String> {
        self.wait_css(&by_testid(id), timeout).await
    }

    /// The element with this testid (waits up to 20 s; panics naming it).
    pub async fn testid(&self, id: &str) -> Element {
        self.wait_for_testid(id, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed ({e}): {script}"))
    }

    /// Polls `script` until it returns something truthy (not null/false/0/""); returns it.
    pub async fn wait_js(&self, what: &str, timeout: Duration, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.wait(what, timeout, || async {
            let v = self.client.execute(script, args.clone()).await.ok()?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            truthy.then_some(v)
        })
        .await
    }

    /// Clicks the element with this testid (waiting for it to exist).
    pub async fn click(&self, id: &str) {
        let el = self.testid(id).await;
        el.click().await.unwrap_or_else(|e| panic!("click on {id}: {e}"));
    }

    /// Clicks the first element matching the CSS selector (waiting for it to exist).
    pub async fn click_css(&self, css: &str) {
        let el = self.wait_css(css, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("{e}"));
        el.click().await.unwrap_or_else(|e| panic!("click on {css}: {e}"));
    }

    /// Replaces the text of the input with this testid by `text`, with real key events only
    /// (Ctrl+A, Backspace, then the text): WebDriver's clear() fires no input event, so a React
    /// input would keep its old value.
    pub async fn type_into(&self, id: &str, text: &str) {
        let el = self.testid(id).await;
        el.send_keys("\u{E009}a\u{E000}\u{E003}").await.unwrap_or_else(|e| panic!("clear {id}: {e}"));
        if !text.is_empty() {
            el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {id}: {e}"));
        }
        let value = el.prop("value").await.ok().flatten().unwrap_or_default();
        assert_eq!(value, text, "the input {id} holds {value:?} after typing {text:?}");
    }

    /// The visible text of the element with this testid.
    pub async fn text(&self, id: &str) -> String {
        self.testid(id).await.text().await.unwrap_or_else(|e| panic!("text of {id}: {e}"))
    }

    /// Counts elements matching `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.map(|v| v.len()).unwrap_or(0)
    }

    /// Saves what the app's window shows to `path` (PNG), as the X server has it: ImageMagick's
    /// `import` of the window titled "Purser". Not WebDriver's screenshot: WebKitWebDriver waits
    /// for the next frame to be presented, which never comes while a page WebKit paints on the
    /// CPU (no GPU) is idle.
    pub async fn capture(&self, path: &Path) -> Result<(), String> {
        let run = tokio::process::Command::new("import").args(["-display", &self.display, "-window", WINDOW_TITLE]).arg(path).kill_on_drop(true).output();
        match tokio::time::timeout(Duration::from_secs(30), run).await {
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => Err(format!("import {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())),
            Ok(Err(e)) => Err(format!("cannot run ImageMagick's import: {e}")),
            Err(_) => Err("import took over 30 s".into()),
        }
    }

    /// [`Ui::capture`] to `<artifacts>/<name>.png`; a failure is reported, not fatal.
    pub async fn screenshot(&self, name: &str) -> Option<PathBuf> {
        let path = self.artifacts.join(format!("{name}.png"));
        match self.capture(&path).await {
            Ok(()) => {
                eprintln!("screenshot: {}", path.display());
                Some(path)
            }
            Err(e) => {
                eprintln!("screenshot {name} failed: {e}");
                None
            }
        }
    }
}
