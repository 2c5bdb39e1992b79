//! A private X display for one test: `Xvfb :N` on the first display number that is free (no
//! lock file, and Xvfb did not exit), stopped on Drop. Never the user's own display. Also
//! [`close_window`]: the user's click on a window's close button, as a window manager sends it
//! (WM_DELETE_WINDOW), for the close-to-tray figure (WebDriver's close ends the app instead).

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

/// Sends WM_DELETE_WINDOW to every top-level window titled `title` on `display` (libX11 loaded at
/// run time); returns how many got it.
pub fn close_window(display: &str, title: &str) -> Result<usize, String> {
    use std::ffi::{CStr, CString};
    use x11_dl::xlib;
    let x = xlib::Xlib::open().map_err(|e| format!("libX11: {e}"))?;
    let name = CString::new(display).map_err(|e| e.to_string())?;
    // SAFETY: plain Xlib calls on a display opened and closed here; every pointer Xlib returns
    // is checked for null and freed with XFree.
    unsafe {
        let d = (x.XOpenDisplay)(name.as_ptr());
        if d.is_null() {
            return Err(format!("cannot open display {display}"));
        }
        let root = (x.XDefaultRootWindow)(d);
        let protocols = (x.XInternAtom)(d, c"WM_PROTOCOLS".as_ptr(), 0);
        let delete = (x.XInternAtom)(d, c"WM_DELETE_WINDOW".as_ptr(), 0);
        let (mut r, mut p, mut kids, mut n) = (0, 0, std::ptr::null_mut(), 0u32);
        let mut sent = 0;
        if (x.XQueryTree)(d, root, &mut r, &mut p, &mut kids, &mut n) != 0 && !kids.is_null() {
            for &w in std::slice::from_raw_parts(kids, n as usize) {
                let mut wname: *mut std::os::raw::c_char = std::ptr::null_mut();
                if (x.XFetchName)(d, w, &mut wname) == 0 || wname.is_null() {
                    continue;
                }
                let matches = CStr::from_ptr(wname).to_bytes() == title.as_bytes();
                (x.XFree)(wname.cast());
                if !matches {
                    continue;
                }
                let mut ev: xlib::XEvent = std::mem::zeroed();
                ev.client_message.type_ = xlib::ClientMessage;
                ev.client_message.window = w;
                ev.client_message.message_type = protocols;
                ev.client_message.format = 32;
                ev.client_message.data.set_long(0, delete as std::os::raw::c_long);
                ev.client_message.data.set_long(1, 0); // CurrentTime
                (x.XSendEvent)(d, w, 0, xlib::NoEventMask, &mut ev);
                sent += 1;
            }
            (x.XFree)(kids.cast());
        }
        (x.XFlush)(d);
        (x.XCloseDisplay)(d);
        Ok(sent)
    }
}
