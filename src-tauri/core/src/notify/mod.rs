//! Owns raising prompts on the user's screen: the [`Notifier`] a front end provides (the
//! notify-rust one in [`desktop`]; the desktop app may bring its own), the [`Opener`] behind the
//! "Open" button (the app's approval window, or, headless, [`PrintCommand`]), and the
//! [`prompter`] that turns held requests into notifications and button presses into decisions.

pub mod prompter;

#[cfg(feature = "desktop-notify")]
pub mod desktop;

pub use prompter::{spawn, PrompterHandle, FLOOD_THRESHOLD};

use crate::approvals::PendingApproval;
use futures_util::future::BoxFuture;
use std::path::PathBuf;
use tokio::sync::mpsc::UnboundedSender;

/// The application name every notification carries.
pub const APP_NAME: &str = "Purser";
/// Action keys (the labels are for people; the keys are the contract).
pub const ACTION_APPROVE: &str = "approve";
pub const ACTION_DENY: &str = "deny";
pub const ACTION_OPEN: &str = "open";
/// What servers send when the notification's body itself is clicked.
pub const ACTION_DEFAULT: &str = "default";

/// What the notification server can do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Action buttons.
    pub actions: bool,
    /// Markup in the body (`body-markup`): text must be escaped.
    pub markup: bool,
    /// The server's name and version, for the log.
    pub server: String,
}

impl Capabilities {
    /// From the server's `GetCapabilities` answer.
    pub fn from_list(caps: &[String], server: String) -> Self {
        Capabilities { actions: caps.iter().any(|c| c == "actions"), markup: caps.iter().any(|c| c == "body-markup"), server }
    }
}

/// One notification to show (or to put in place of `replaces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub replaces: Option<u32>,
    pub summary: String,
    pub body: String,
    /// (key, label) pairs.
    pub actions: Vec<(String, String)>,
}

/// What happened to a shown notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteEvent {
    /// A button (or the body, `default`) was pressed.
    Action { id: u32, key: String },
    /// It went away without a decision.
    Closed { id: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No session bus, no notification server on it, or the server refused.
    #[error("{0}")]
    Unavailable(String),
}

/// Shows notifications. Implementations report button presses and closings on the channel
/// given to [`Notifier::show`], tagged with the id `show` returned.
pub trait Notifier: Send + Sync + 'static {
    fn capabilities(&self) -> BoxFuture<'_, Result<Capabilities, NotifyError>>;
    fn show(&self, note: Note, events: UnboundedSender<NoteEvent>) -> BoxFuture<'_, Result<u32, NotifyError>>;
    fn close(&self, id: u32) -> BoxFuture<'_, ()>;
}

/// What "Open" does: bring up the approval window, or say how to decide.
pub trait Opener: Send + Sync + 'static {
    fn open_approval(&self, approval: &PendingApproval);
    fn open_queue(&self, grant_id: &str, grant_label: &str, waiting: usize);
}

/// The headless "Open": prints the CLI commands that decide (on the daemon's stdout).
pub struct PrintCommand {
    data_dir: Option<PathBuf>,
}

impl PrintCommand {
    /// `data_dir`: added to the commands as `--data-dir` (when not the default one).
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        PrintCommand { data_dir }
    }

    fn purser(&self) -> String {
        match &self.data_dir {
            Some(d) => format!("purser --data-dir {}", shell_quote(&d.display().to_string())),
            None => "purser".to_string(),
        }
    }

    /// The lines printed for one held request.
    pub fn approval_text(&self, a: &PendingApproval) -> String {
        let p = self.purser();
        let id = crate::text::clean(&a.id, 64);
        format!(
            "purser: payment held for you: ${} to {} (task “{}”)\n    approve: {p} approvals approve {id}\n    deny:    {p} approvals deny {id}",
            crate::text::clean(&a.amount_usd, 30),
            crate::text::authority(&a.url),
            crate::text::clean(&a.grant_label, crate::text::MAX_NAME)
        )
    }

    /// The lines printed for the queue of a flooded grant.
    pub fn queue_text(&self, grant_label: &str, waiting: usize) -> String {
        format!("purser: {waiting} more payments for task “{}” are waiting: {} approvals list", crate::text::clean(grant_label, crate::text::MAX_NAME), self.purser())
    }
}

fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Opener for PrintCommand {
    fn open_approval(&self, approval: &PendingApproval) {
        println!("{}", self.approval_text(approval));
    }
    fn open_queue(&self, _grant_id: &str, grant_label: &str, waiting: usize) {
        println!("{}", self.queue_text(grant_label, waiting));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_open_prints_the_commands() {
        let mut a = crate::prompt::tests::view();
        a.grant_label = "re\u{202E}search".into();
        let p = PrintCommand::new(Some("/tmp/my data".into()));
        assert_eq!(
            p.approval_text(&a),
            "purser: payment held for you: $0.05 to 127.0.0.1:4021 (task “research”)\n    approve: purser --data-dir '/tmp/my data' approvals approve 0193-abc\n    deny:    purser --data-dir '/tmp/my data' approvals deny 0193-abc"
        );
        assert_eq!(PrintCommand::new(None).queue_text("r", 7), "purser: 7 more payments for task “r” are waiting: purser approvals list");
        let caps = Capabilities::from_list(&["body".into(), "actions".into()], "x".into());
        assert!(caps.actions && !caps.markup);
    }
}
