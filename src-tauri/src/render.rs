//! Owns how the webview paints, chosen once before GTK and WebKit start. WebKitGTK composites
//! pages with OpenGL; on a machine without a GPU render node (`/dev/dri/renderD*`: a VM, a
//! headless box, Xvfb) that OpenGL is Mesa's software rasteriser, which is slower than WebKit's
//! own CPU painting. Measured on the 1M-receipt timeline under Xvfb: 21 fps scrolling with
//! software OpenGL, 59 fps with CPU painting; 80 MB less in the page's process.
//!
//! So without a render node the app turns accelerated compositing off
//! (`WEBKIT_DISABLE_COMPOSITING_MODE=1`, inherited by WebKit's processes). With one, WebKit's
//! default stands. A `WEBKIT_DISABLE_COMPOSITING_MODE` the user set is always left as it is.

use std::path::Path;

/// The variable WebKitGTK reads (in the app and in the web process it starts).
pub const DISABLE_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// How the page is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Painting {
    /// The user set `WEBKIT_DISABLE_COMPOSITING_MODE`: not ours to change.
    AsTheUserSet,
    /// WebKit's default: composited with the GPU.
    Gpu,
    /// No GPU: WebKit paints on the CPU (compositing off).
    Cpu,
}

/// The choice, from whether the user set the variable and whether a render node exists.
pub fn choose(user_set: bool, has_render_node: bool) -> Painting {
    match (user_set, has_render_node) {
        (true, _) => Painting::AsTheUserSet,
        (false, true) => Painting::Gpu,
        (false, false) => Painting::Cpu,
    }
}

/// Whether `dir` (normally `/dev/dri`) holds a DRM render node.
pub fn has_render_node(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD"))).unwrap_or(false)
}

/// Applies the choice to this process's environment. Call first thing in `main`, before any
/// thread starts (the environment is process-wide) and before GTK is initialised.
pub fn apply() -> Painting {
    let p = choose(std::env::var_os(DISABLE_COMPOSITING).is_some(), has_render_node(Path::new("/dev/dri")));
    if p == Painting::Cpu {
        std::env::set_var(DISABLE_COMPOSITING, "1");
    }
    p
}
