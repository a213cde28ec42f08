//! Tauri's build step (icons, capabilities, context) runs only for the tray app build.
fn main() {
    if std::env::var_os("CARGO_FEATURE_GUI").is_some() {
        tauri_build::build();
    }
}
