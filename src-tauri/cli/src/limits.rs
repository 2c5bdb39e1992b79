//! Owns the process limits `purser serve` raises at start: the open-file limit (RLIMIT_NOFILE),
//! soft to hard. Each agent connection holds a socket to the agent and one to the upstream, so
//! the usual soft limit of 1024 runs out near 500 concurrent requests while the hard limit
//! (often 524288 on Linux) allows far more. The kernel, not Purser, caps it there.

/// The open-file limit before and after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard one (macOS: at most `OPEN_MAX`, which is what
/// its kernel accepts). Errors only if the limit cannot even be read.
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (before, hard) = (lim.rlim_cur, lim.rlim_max);
    #[cfg(target_os = "macos")]
    let want = hard.min(libc::OPEN_MAX as libc::rlim_t);
    #[cfg(not(target_os = "macos"))]
    let want = hard;
    if want > before {
        let raised = libc::rlimit { rlim_cur: want, rlim_max: hard };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = want;
        }
    }
    // `rlim_t` is u64 on Linux but not everywhere: the casts stay.
    #[allow(clippy::unnecessary_cast)]
    Ok(OpenFiles { before: before as u64, now: lim.rlim_cur as u64, hard: hard as u64 })
}

/// [`raise_open_files`], logged: info with the figures, a warning when fewer than 4096 files
/// (about 2000 concurrent requests) are allowed.
pub fn raise_and_log() {
    match raise_open_files() {
        Ok(l) if l.now < 4096 => tracing::warn!(soft = l.now, hard = l.hard, "open-file limit is low: about {} concurrent requests fit", l.now / 2),
        Ok(l) => tracing::info!(before = l.before, soft = l.now, hard = l.hard, "open-file limit raised"),
        Err(e) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_one() {
        let l = raise_open_files().unwrap();
        assert!(l.now >= l.before && l.now <= l.hard, "{l:?}");
        #[cfg(target_os = "linux")]
        assert_eq!(l.now, l.hard, "on Linux the soft limit may always rise to the hard one");
        // Raising again changes nothing.
        let again = raise_open_files().unwrap();
        assert_eq!((again.before, again.now), (l.now, l.now));
    }
}
