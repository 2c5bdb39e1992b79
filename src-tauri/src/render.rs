//! Owns how the webview paints, chosen once before GTK and WebKit start. WebKitGTK composites
//! pages with OpenGL; on a machine without a GPU render node (`/dev/dri/renderD*`: a VM, a
//! headless box, Xvfb) that OpenGL is Mesa's software rasteriser, which is slower than WebKit's
//! own CPU painting. Measured on the 1M-receipt timeline under Xvfb: 21 fps scrolling with
//! software OpenGL, 59 fps with CPU painting; 80 MB less in the page's process.
//!
//! So without a render node the app turns accelerated compositing off, and keeps OpenGL out of
//! its own process (the one that stays in the tray when the window is closed): GTK's GL
//! (`GDK_GL=disable`), WebKit's DMA-BUF renderer (`WEBKIT_DISABLE_DMABUF_RENDERER=1`: pages reach
//! the window in shared memory, as they do anyway without a GPU) and WebKit's look-up of the render
//! node through EGL (`WEBKIT_WEB_RENDER_DEVICE_FILE` names a node that does not exist, which is the
//! answer the look-up would give). Each of those loads Mesa's driver and its LLVM into the app's
//! process, which never unloads them: measured, the app's process is 52 MB smaller without
//! them (44 MB of it LLVM).
//! The variables are inherited by WebKit's processes.
//! With a render node WebKit's defaults stand. If the user set any of these variables, none is
//! changed: the user's rendering choice is theirs.

use std::path::Path;

/// The variable that turns WebKitGTK's accelerated compositing off (in the app and in the web
/// process it starts).
pub const DISABLE_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// What the app sets without a render node, in this order.
pub const CPU_PAINTING: [(&str, &str); 4] = [(DISABLE_COMPOSITING, "1"), ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"), ("WEBKIT_WEB_RENDER_DEVICE_FILE", NO_RENDER_NODE), ("GDK_GL", "disable")];

/// The render node named when there is none (WebKit ignores an empty value and asks EGL).
pub const NO_RENDER_NODE: &str = "/dev/dri/no-render-node";

/// How the page is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Painting {
    /// The user set one of the [`CPU_PAINTING`] variables: not ours to change.
    AsTheUserSet,
    /// WebKit's default: composited with the GPU.
    Gpu,
    /// No GPU: WebKit paints on the CPU (compositing off), no OpenGL in the app's process.
    Cpu,
}

/// The choice, from whether the user set a variable and whether a render node exists.
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
    let user_set = CPU_PAINTING.iter().any(|(k, _)| std::env::var_os(k).is_some());
    let p = choose(user_set, has_render_node(Path::new("/dev/dri")));
    if p == Painting::Cpu {
        for (k, v) in CPU_PAINTING {
            std::env::set_var(k, v);
        }
    }
    p
}
