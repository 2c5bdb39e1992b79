//! Owns what closing the window to the tray gives back to the system. The window's webview is
//! destroyed (WebKit's web process ends with it); then, a moment later and only if no window
//! was opened meanwhile, the app returns its freed heap (`malloc_trim`) and ends WebKit's
//! network process. WebKitGTK keeps that process for as long as the app runs, even with no page
//! left to serve (tauri-apps/tauri#14626): 61 MB RSS measured, idle in the tray for hours. The
//! next Open starts a new one, as WebKit does whenever its network process is gone.

use std::time::Duration;
use tauri::{AppHandle, Manager};

/// How long after the window closed the app waits before giving memory back (the user may
/// open it again at once, and would then wait for a new network process).
pub const SETTLE: Duration = Duration::from_secs(2);

/// The name (`/proc/PID/comm`, 15 bytes at most) of WebKitGTK's network process.
const NETWORK_PROCESS: &str = "WebKitNetworkPr";

/// The main window was destroyed: give memory back once it has settled.
pub fn window_closed(app: &AppHandle) {
    let app = app.clone();
    std::thread::spawn(move || {
        std::thread::sleep(SETTLE);
        let handle = app.clone();
        // On the main thread, where windows are built: no window can appear between the check
        // and the signal.
        let _ = app.run_on_main_thread(move || {
            if handle.get_webview_window(crate::opener::MAIN).is_some() {
                return;
            }
            #[cfg(target_os = "linux")]
            {
                unsafe { libc::malloc_trim(0) };
                for pid in children_named(std::process::id(), NETWORK_PROCESS) {
                    // SAFETY: a plain signal to our own child process.
                    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } == 0 {
                        tracing::info!(pid, "window closed: ended WebKit's network process");
                    }
                }
            }
        });
    });
}

/// Our child processes whose name is `name` (from `/proc/PID/stat`: the parent pid and name).
#[cfg(target_os = "linux")]
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return vec![] };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            // "PID (NAME) STATE PPID ...": the name may hold spaces or parentheses; it ends at the last ')'.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { return false };
            let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            &stat[open + 1..close] == name && ppid == Some(parent)
        })
        .collect()
}
