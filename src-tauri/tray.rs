//! The tray icon: builds the toolkit menu out of `tray_model::menu_model` and routes clicks to
//! `tray_app::on_menu_action`. Nothing here decides what the menu contains.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt as _;

use crate::tray_model::{
    HostSnapshot, MenuAction, MenuEntry, menu_model, needs_attention, status_line,
};

/// The id of our one tray icon.
pub const TRAY_ID: &str = "mcp-session-manager";

const TRAY_ICON_PNG: &[u8] = include_bytes!("../icons/tray.png");
/// The same icon with a red dot: something needs a look (see `needs_attention`).
const TRAY_WARNING_ICON_PNG: &[u8] = include_bytes!("../icons/tray-warning.png");

fn icon_for(snapshot: &HostSnapshot) -> tauri::Result<Image<'static>> {
    Image::from_bytes(if needs_attention(snapshot) {
        TRAY_WARNING_ICON_PNG
    } else {
        TRAY_ICON_PNG
    })
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
