//! A private X display for one test: `Xvfb :N` on the first display number that is free (no
//! lock file, and Xvfb did not exit), stopped on Drop. Never the user's own display.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use purser_testkit::proc;

/// Screen size of the virtual display (the app's window is 960x640).
pub const SCREEN: &str = "1280x800x24";

pub struct Xvfb {
    /// `:N`
    pub display: String,
    child: Child,
}

impl Xvfb {
    /// Starts Xvfb on a free display (panics with a hint when Xvfb is not installed).
    pub fn start() -> Xvfb {
        // Spread parallel test processes over the range; each candidate is tried once.
        let base = 200 + (std::process::id() % 400);
        for n in (base..base + 200).chain(100..200) {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                continue;
            }
            let mut child = Command::new("Xvfb")
                .arg(format!(":{n}"))
                .args(["-screen", "0", SCREEN, "-nolisten", "tcp", "-noreset"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run Xvfb ({e}): install the `xvfb` package (.ci/app.sh does)"));
            let socket = format!("/tmp/.X11-unix/X{n}");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // taken by someone else meanwhile: next number
                }
                if Path::new(&socket).exists() {
                    return Xvfb { display: format!(":{n}"), child };
                }
                if Instant::now() >= deadline {
                    proc::terminate(&mut child, Duration::from_secs(2));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free X display number for Xvfb");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        proc::terminate(&mut self.child, Duration::from_secs(3));
    }
}
