//! Owns the secrets the environment hands this process: `PURSER_PASSPHRASE` is taken out of the
//! environment once, first thing in `main` (while the process has one thread), and its bytes in
//! the process's original environment block are overwritten, so `/proc/<pid>/environ` no
//! longer shows it. The daemon also marks itself non-dumpable, so another process of the same
//! user can neither read its memory nor ptrace it (see the README's threat model).

use std::sync::Mutex;
use zeroize::Zeroizing;

/// The variable that may carry the wallet passphrase for an unattended start.
pub const PASSPHRASE_VAR: &str = "PURSER_PASSPHRASE";

static FROM_ENV: Mutex<Option<Zeroizing<String>>> = Mutex::new(None);

/// Takes `PURSER_PASSPHRASE` out of the environment, keeping it in memory for [`env_passphrase`].
/// Call before any other thread starts.
pub fn take_from_env() {
    let Some(value) = std::env::var_os(PASSPHRASE_VAR) else { return };
    *FROM_ENV.lock().unwrap_or_else(|p| p.into_inner()) = value.to_str().map(|s| Zeroizing::new(s.to_string()));
    scrub_environ_block();
    // SAFETY (edition 2021: safe fn): single-threaded here, as the caller promises.
    std::env::remove_var(PASSPHRASE_VAR);
}

/// The passphrase the environment gave, if any (for the commands that may take it from there:
/// `serve`, `wallet new|import`, `demo`).
pub fn env_passphrase() -> Option<Zeroizing<String>> {
    FROM_ENV.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Overwrites every `PURSER_PASSPHRASE=...` string the C environment points at with zero bytes
/// (the kernel's `/proc/<pid>/environ` reads the original block these strings live in).
fn scrub_environ_block() {
    extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let prefix = format!("{PASSPHRASE_VAR}=");
    // SAFETY: `environ` is the process's NUL-terminated array of NUL-terminated strings; we
    // run single-threaded (see `take_from_env`), read each entry up to its NUL, and overwrite
    // only bytes inside that same string.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return;
        }
        while !(*p).is_null() {
            let s = *p;
            let len = libc::strlen(s);
            let bytes = std::slice::from_raw_parts_mut(s as *mut u8, len);
            if bytes.starts_with(prefix.as_bytes()) {
                bytes.iter_mut().for_each(|b| *b = 0);
            }
            p = p.add(1);
        }
    }
}

/// Makes this process non-dumpable: no core dumps, and `/proc/<pid>/{mem,environ}` and ptrace
/// are closed to other processes of the same user (only root keeps them).
pub fn not_dumpable() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers and only changes this process's flag.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not make the daemon non-dumpable");
    }
}
