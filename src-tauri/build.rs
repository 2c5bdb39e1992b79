//! Tauri build step: embeds tauri.conf.json and resolves the ACL from ./capabilities.

fn main() {
    // Declaring an app manifest turns on access control for Purser's own commands too: a command
    // is callable only when a capability grants its permission (defined in capabilities/permissions).
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./capabilities/*.json")
        .app_manifest(
            tauri_build::AppManifest::new()
                .permissions_path_pattern("./capabilities/permissions/*.toml"),
        );
    // With explicit patterns tauri-build watches neither folder itself.
    println!("cargo:rerun-if-changed=capabilities");
    tauri_build::try_build(attributes).expect("tauri-build failed");
}
