//! The tray icon: builds the toolkit menu out of `tray_model::menu_model` and routes clicks to
//! `tray_app::on_menu_action`. Nothing here decides what the menu contains.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt as _;

use crate::tray_model::{
    HostSnapshot, IconState, MenuAction, MenuEntry, icon_state, menu_model, status_line,
};

/// The id of our one tray icon.
pub const TRAY_ID: &str = "mcp-session-manager";

const TRAY_ICON_PNG: &[u8] = include_bytes!("../icons/tray.png");
/// macOS draws a menu-bar icon in the bar's own colour from a black template
/// (`scripts/make-tray-template.py`); the states that call for attention keep their colours.
const TRAY_TEMPLATE_PNG: &[u8] = include_bytes!("../icons/tray-template.png");
/// The same icon with a red dot: something failed, or the host does not answer.
const TRAY_WARNING_ICON_PNG: &[u8] = include_bytes!("../icons/tray-warning.png");
/// The dot of the "some stopped" icon (amber), drawn over the plain icon.
const STOPPED_DOT: [u8; 4] = [0xe0, 0xa0, 0x10, 0xff];

/// Whether the icon shown for `snapshot` is a template (macOS, all well).
fn is_template(snapshot: &HostSnapshot) -> bool {
    cfg!(target_os = "macos") && icon_state(snapshot) == IconState::AllRunning
}

fn icon_for(snapshot: &HostSnapshot) -> tauri::Result<Image<'static>> {
    match icon_state(snapshot) {
        IconState::AllRunning if is_template(snapshot) => Image::from_bytes(TRAY_TEMPLATE_PNG),
        IconState::AllRunning => Image::from_bytes(TRAY_ICON_PNG),
        IconState::Error => Image::from_bytes(TRAY_WARNING_ICON_PNG),
        IconState::SomeStopped => {
            let plain = Image::from_bytes(TRAY_ICON_PNG)?;
            let (width, height) = (plain.width(), plain.height());
            let mut rgba = plain.rgba().to_vec();
            paint_dot(&mut rgba, width, height, STOPPED_DOT);
            Ok(Image::new_owned(rgba, width, height))
        }
    }
}

/// Paints a filled dot (a third of the icon wide) into the bottom-right corner of an RGBA
/// image, with a one-pixel transparent ring so it reads on any panel colour.
fn paint_dot(rgba: &mut [u8], width: u32, height: u32, color: [u8; 4]) {
    let radius = width.min(height) as f64 / 6.0;
    let (cx, cy) = (width as f64 - radius - 0.5, height as f64 - radius - 0.5);
    for y in 0..height {
        for x in 0..width {
            let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
            let at = ((y * width + x) * 4) as usize;
            if d <= radius {
                rgba[at..at + 4].copy_from_slice(&color);
            } else if d <= radius + 1.0 {
                rgba[at..at + 4].copy_from_slice(&[0, 0, 0, 0]);
            }
        }
    }
}

/// Whether "Start at login" is on; a broken autostart backend reads as off.
pub fn autostart_enabled<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.autolaunch().is_enabled().unwrap_or(false)
}

/// Creates the tray icon with the menu for `snapshot`.
pub fn create_tray<R: Runtime>(
    app: &AppHandle<R>,
    snapshot: &HostSnapshot,
) -> tauri::Result<TrayIcon<R>> {
    let menu = build_menu(app, &menu_model(snapshot, autostart_enabled(app)))?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon_for(snapshot)?)
        .icon_as_template(is_template(snapshot))
        .tooltip(status_line(snapshot))
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match MenuAction::parse(event.id().as_ref()) {
            Some(action) => crate::tray_app::on_menu_action(app, action),
            None => tracing::debug!(id = event.id().as_ref(), "menu item without an action"),
        })
        .build(app)
}

/// Rebuilds the menu and tooltip for a new host state (a no-op when there is no tray).
pub fn update_tray<R: Runtime>(app: &AppHandle<R>, snapshot: &HostSnapshot) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    let menu = build_menu(app, &menu_model(snapshot, autostart_enabled(app)))?;
    tray.set_menu(Some(menu))?;
    tray.set_icon(Some(icon_for(snapshot)?))?;
    tray.set_icon_as_template(is_template(snapshot))?;
    tray.set_tooltip(Some(status_line(snapshot)))
}

/// The toolkit menu for `entries`.
pub fn build_menu<R: Runtime, M: Manager<R>>(
    manager: &M,
    entries: &[MenuEntry],
) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(manager)?;
    for entry in entries {
        menu.append(build_entry(manager, entry)?.as_ref())?;
    }
    Ok(menu)
}

fn build_entry<R: Runtime, M: Manager<R>>(
    manager: &M,
    entry: &MenuEntry,
) -> tauri::Result<Box<dyn IsMenuItem<R>>> {
    Ok(match entry {
        MenuEntry::Info(text) => Box::new(MenuItem::new(manager, text, false, None::<&str>)?),
        MenuEntry::Separator => Box::new(PredefinedMenuItem::separator(manager)?),
        MenuEntry::Item {
            action,
            label,
            enabled,
        } => Box::new(MenuItem::with_id(
            manager,
            action.id(),
            label,
            *enabled,
            None::<&str>,
        )?),
        MenuEntry::Check {
            action,
            label,
            checked,
        } => Box::new(CheckMenuItem::with_id(
            manager,
            action.id(),
            label,
            true,
            *checked,
            None::<&str>,
        )?),
        MenuEntry::Submenu { label, entries } => {
            let submenu = Submenu::new(manager, label, true)?;
            for child in entries {
                submenu.append(build_entry(manager, child)?.as_ref())?;
            }
            Box::new(submenu)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_distinct_icons() {
        let icon = |targets_state: IconState| {
            let snapshot = match targets_state {
                IconState::Error => HostSnapshot::Unreachable("x".into()),
                IconState::SomeStopped => HostSnapshot::Starting,
                IconState::AllRunning => HostSnapshot::Running(
                    serde_json::from_value(serde_json::json!({
                        "version": "0", "pid": 1, "uptime_secs": 0, "started_at": "",
                        "manager_port": 1, "state_dir": "", "targets": []
                    }))
                    .unwrap(),
                ),
            };
            icon_for(&snapshot).unwrap().rgba().to_vec()
        };
        let (all, some, error) = (
            icon(IconState::AllRunning),
            icon(IconState::SomeStopped),
            icon(IconState::Error),
        );
        assert_ne!(all, some);
        assert_ne!(some, error);
        assert_ne!(all, error);
        // The dot sits in the bottom-right corner, in amber.
        let image = Image::from_bytes(TRAY_ICON_PNG).unwrap();
        let (w, h) = (image.width() as usize, image.height() as usize);
        let corner = ((h - w / 6) * w + (w - w / 6)) * 4;
        assert_eq!(some[corner..corner + 4], STOPPED_DOT);
    }
}
