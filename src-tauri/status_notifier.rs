//! Whether a tray icon can be seen at all. On Linux the tray is a StatusNotifierItem, shown
//! only when a StatusNotifier host owns `org.kde.StatusNotifierWatcher` on the session bus;
//! without one the icon silently goes nowhere, so the app says so and opens its window instead.

/// The D-Bus name a StatusNotifier host (a panel or a desktop shell) owns.
pub const WATCHER_NAME: &str = "org.kde.StatusNotifierWatcher";

/// Where a tray icon would be shown, or why it would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayVisibility {
    Visible,
    /// The reason, for the log and the window.
    Invisible(String),
}

/// Asks the session bus whether anyone owns the StatusNotifier watcher name.
#[cfg(target_os = "linux")]
pub fn tray_visibility() -> TrayVisibility {
    use gio::prelude::*;

    let connection = match gio::bus_get_sync(gio::BusType::Session, gio::Cancellable::NONE) {
        Ok(connection) => connection,
        Err(err) => return TrayVisibility::Invisible(format!("no D-Bus session bus ({err})")),
    };
    #[expect(clippy::expect_used, reason = "\"(b)\" is a valid D-Bus type string")]
    let answer = connection.call_sync(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
        Some(&(WATCHER_NAME,).to_variant()),
        Some(gio::glib::VariantTy::new("(b)").expect("a valid D-Bus type string")),
        gio::DBusCallFlags::NONE,
        2000,
        gio::Cancellable::NONE,
    );
    match answer.map(|v| v.get::<(bool,)>()) {
        Ok(Some((true,))) => TrayVisibility::Visible,
        Ok(_) => TrayVisibility::Invisible(format!(
            "no StatusNotifier host on the session bus (nobody owns {WATCHER_NAME}): the desktop has no tray area for the icon"
        )),
        Err(err) => TrayVisibility::Invisible(format!(
            "could not ask the session bus for {WATCHER_NAME} ({err})"
        )),
    }
}

/// macOS and Windows always have a tray area.
#[cfg(not(target_os = "linux"))]
pub fn tray_visibility() -> TrayVisibility {
    TrayVisibility::Visible
}
