//! A real browser for the web console's tests: Debian's Chromium, headless,
//! driven over WebDriver by Debian's ChromeDriver, through the fantoccini
//! crate (jonhoo's, kept up with the WebDriver spec; the tests stay in Rust
//! beside the fixtures they share, where Python's selenium would need a
//! second test runner and its own copies of the ZooKeeper fixtures).
//!
//! The tests' calls block: each runs on a one-thread tokio runtime of the
//! browser's own. ChromeDriver dies with the test (a parent-death signal)
//! and Chromium with the test process (a watcher of its wrapper script), so
//! that a killed test leaves no browser behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use zkutil::testing::{TestProcess, free_ports, poll_until};

/// A headless Chromium, until dropped.
pub(crate) struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    _driver: TestProcess,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser whose window is `width` × `height` CSS pixels.
    pub(crate) fn start(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a temporary folder");
        let wrapper = chromium_wrapper(profile.path());
        let port = free_ports(1).expect("a free port")[0];
        let driver = TestProcess::start(
            "setpriv",
            &[
                "--pdeathsig",
                "KILL",
                "--",
                "chromedriver",
                &format!("--port={port}"),
            ],
            &[],
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let user_data = profile.path().join("profile");
        let options = json!({
            "binary": wrapper,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--no-first-run", "--disable-quic", "--hide-scrollbars",
                format!("--user-data-dir={}", user_data.display()),
                format!("--window-size={width},{height}"),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        // An alert must stay open for the test to see it, not be dismissed.
        capabilities.insert("unhandledPromptBehavior".to_owned(), json!("ignore"));
        let url = format!("http://127.0.0.1:{port}");
        let client = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            runtime
                .block_on(
                    ClientBuilder::new(connector)
                        .capabilities(capabilities.clone())
                        .connect(&url),
                )
                .ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "ChromeDriver did not start a browser: {}",
                driver.stderr_text()
            )
        });
        Browser {
            runtime,
            client: Some(client),
            _driver: driver,
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Opens `url` (returns once the page has loaded).
    pub(crate) fn open(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Runs `script` in the page (its `return` value as JSON); `None` when
    /// it cannot run (an alert is open).
    pub(crate) fn run(&self, script: &str) -> Option<Value> {
        self.runtime
            .block_on(self.client().execute(script, Vec::new()))
            .ok()
    }

    /// Polls `script` until it returns something other than `null` or
    /// `false`; panics with `what` at `deadline`.
    pub(crate) fn wait_for(&self, deadline: Duration, what: &str, script: &str) -> Value {
        poll_until(deadline, Duration::from_millis(25), || {
            self.run(script)
                .filter(|v| !v.is_null() && *v != Value::Bool(false))
        })
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting until {what}"))
    }

    /// The first element matching `css`.
    fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.runtime
            .block_on(self.client().find(Locator::Css(css)))
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Clicks the first element matching `css`.
    pub(crate) fn click(&self, css: &str) {
        let element = self.find(css);
        self.runtime
            .block_on(element.click())
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Types `text` into the first element matching `css`, emptied first.
    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.runtime
            .block_on(async {
                element.clear().await?;
                element.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Resizes the window to `width` × `height`.
    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.runtime
            .block_on(self.client().set_window_size(width, height))
            .expect("the window resized");
    }

    /// The text of an open alert, confirm or prompt dialog, if one is open.
    pub(crate) fn alert(&self) -> Option<String> {
        self.runtime.block_on(self.client().get_alert_text()).ok()
    }

    /// A PNG of the window, written to `path`.
    pub(crate) fn screenshot(&self, path: &Path) {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the screenshots' folder");
        }
        std::fs::write(path, png).expect("the screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
    }
}

/// Where the tests' screenshots go: `target/console-screenshots/`.
pub(crate) fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/console-screenshots")
        .join(name)
}

/// A script that runs Chromium and ends it when the test process ends
/// (ChromeDriver starts it; a killed ChromeDriver would leave it running).
fn chromium_wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("chromium");
    let script = format!(
        "#!/bin/sh\n/usr/bin/chromium \"$@\" &\nchild=$!\n\
         while kill -0 {test} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done\n\
         kill $child 2>/dev/null\nwait $child\n",
        test = std::process::id()
    );
    std::fs::write(&path, script).expect("the wrapper written");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("executable");
    path
}
