//! Whether a tray icon can be seen at all. On Linux the tray is a StatusNotifierItem, shown
//! when a StatusNotifier host owns `org.kde.StatusNotifierWatcher` on the session bus; without
//! one, libayatana-appindicator falls back to an XEmbed icon, shown when an XEmbed tray manager
//! (a panel's systray) owns the X selection `_NET_SYSTEM_TRAY_S<screen>`. With neither the
//! icon silently goes nowhere, so the app says so and opens its window instead.

/// The D-Bus name a StatusNotifier host (a panel or a desktop shell) owns.
#[cfg(target_os = "linux")]
pub const WATCHER_NAME: &str = "org.kde.StatusNotifierWatcher";

/// Where a tray icon would be shown, or why it would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayVisibility {
    Visible,
    /// The reason, for the log and the window (only Linux desktops can lack a tray area).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Invisible(String),
}

/// A StatusNotifier host, else an XEmbed tray manager.
#[cfg(target_os = "linux")]
pub fn tray_visibility() -> TrayVisibility {
    let watcher = status_notifier_watcher();
    if watcher == TrayVisibility::Visible {
        return watcher;
    }
    match xembed_tray_manager() {
        Ok(true) => TrayVisibility::Visible,
        Ok(false) => match watcher {
            TrayVisibility::Invisible(reason) => TrayVisibility::Invisible(format!(
                "{reason}, and no XEmbed tray manager on the X display (nobody owns _NET_SYSTEM_TRAY_S<screen>)"
            )),
            visible => visible,
        },
        Err(x_reason) => match watcher {
            TrayVisibility::Invisible(reason) => {
                TrayVisibility::Invisible(format!("{reason}; {x_reason}"))
            }
            visible => visible,
        },
    }
}

/// Whether an XEmbed tray manager owns `_NET_SYSTEM_TRAY_S<default screen>` (freedesktop
/// System Tray Protocol). Xlib is loaded at run time, so a Wayland-only session just says no.
#[cfg(target_os = "linux")]
pub fn xembed_tray_manager() -> Result<bool, String> {
    use std::ffi::CString;
    let xlib = x11_dl::xlib::Xlib::open().map_err(|e| format!("Xlib not available ({e})"))?;
    // SAFETY: plain Xlib calls on a display we open and close here; every pointer passed is
    // either the display Xlib returned (checked non-null) or a NUL-terminated string we own.
    unsafe {
        let display = (xlib.XOpenDisplay)(std::ptr::null());
        if display.is_null() {
            return Err("no X display to look for an XEmbed tray on".into());
        }
        let screen = (xlib.XDefaultScreen)(display);
        let Ok(name) = CString::new(format!("_NET_SYSTEM_TRAY_S{screen}")) else {
            (xlib.XCloseDisplay)(display);
            return Err("the tray selection's name has a NUL".into());
        };
        let atom = (xlib.XInternAtom)(display, name.as_ptr(), x11_dl::xlib::False);
        let owner = (xlib.XGetSelectionOwner)(display, atom);
        (xlib.XCloseDisplay)(display);
        Ok(owner != 0)
    }
}

/// Asks the session bus whether anyone owns the StatusNotifier watcher name.
#[cfg(target_os = "linux")]
fn status_notifier_watcher() -> TrayVisibility {
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
