//! What only the desktop shell does: the tray icon and its menu, the window that
//! hides instead of closing, notifications, the native folder picker, start at
//! login. Everything about folders, history and mounts lives in `floe_api`.

use std::time::Duration;

use floe_api::ApiError;
use floe_api::engine::StatusView;
use floe_api::notices::{Told, news};
use floe_api::words::Overall;
use floe_core::ErrorCode;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_notification::NotificationExt;

use crate::Floe;

const TRAY: &str = "floe";

fn tray_icon(o: Overall) -> &'static [u8] {
    match o {
        Overall::Synced => include_bytes!("../icons/tray-synced.png"),
        Overall::Syncing => include_bytes!("../icons/tray-syncing.png"),
        Overall::Paused => include_bytes!("../icons/tray-paused.png"),
        Overall::Attention => include_bytes!("../icons/tray-attention.png"),
    }
}

/// Show and focus the main window.
/// Show the window, making it (and its webview) first when there is none: the app
/// starts without one when it starts hidden, and closing it destroys it, so that a
/// tray-only app holds no WebKit web process (a hidden window kept ~350 MB of the
/// 508 MB measured by bench/app.py).
pub(crate) fn show_window(app: &AppHandle) {
    let w = match app.get_webview_window(WINDOW) {
        Some(w) => w,
        None => match make_window(app) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("cannot open the window: {e}");
                return;
            }
        },
    };
    let _ = w.show();
    let _ = w.unminimize();
    let _ = w.set_focus();
}

/// The label of the one window, as tauri.conf.json declares it (`create: false`).
const WINDOW: &str = "main";

fn make_window(app: &AppHandle) -> tauri::Result<tauri::WebviewWindow> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == WINDOW)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    tauri::WebviewWindowBuilder::from_config(app, &config)?.build()
}

/// Another start of the app (the menu, the login autostart, a file manager's
/// "Open with"): the single-instance plugin ends it and tells this one, which
/// shows its window; a folder on its command line opens the add-folder form with
/// it filled in.
pub(crate) fn second_start(app: &AppHandle, argv: &[String], cwd: &str) {
    tracing::info!(?argv, "a second start of the app: showing this one");
    show_window(app);
    if let Some(folder) = floe_api::folders::folder_arg(argv, std::path::Path::new(cwd)) {
        let _ = app.emit("add-folder", folder.display().to_string());
    }
}

/// Stop the engine this process hosts and exit (mounts live in processes of their
/// own and stay).
pub(crate) fn quit(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        app.state::<Floe>().host.shutdown().await;
        app.exit(0);
    });
}

/// Mount what the user keeps for login and is not mounted now (each outcome logged).
pub(crate) fn restore_mounts(app: &AppHandle) {
    let mounts = app.state::<Floe>().mounts.clone();
    tauri::async_runtime::spawn(async move { mounts.restore().await });
}

/// The tray icon with its menu. `false` when the desktop has no tray (then closing
/// the window quits, or nothing would be left to reopen it).
pub(crate) fn tray(app: &AppHandle) -> bool {
    if std::env::var("FLOE_TRAY").is_ok_and(|v| v == "off") {
        return false;
    }
    let built = (|| -> tauri::Result<()> {
        let open = MenuItem::with_id(app, "open", "Open Floe", true, None::<&str>)?;
        let pause = MenuItem::with_id(app, "pause", "Pause syncing", true, None::<&str>)?;
        let resume = MenuItem::with_id(app, "resume", "Resume syncing", true, None::<&str>)?;
        let sep = PredefinedMenuItem::separator(app)?;
        let quit_item = MenuItem::with_id(app, "quit", "Quit Floe", true, None::<&str>)?;
        let menu = Menu::with_items(app, &[&open, &pause, &resume, &sep, &quit_item])?;
        TrayIconBuilder::with_id(TRAY)
            .icon(Image::from_bytes(tray_icon(Overall::Synced))?)
            .tooltip("Floe: starting")
            .menu(&menu)
            .show_menu_on_left_click(true)
            .on_menu_event(|app, event| match event.id.as_ref() {
                "open" => show_window(app),
                "pause" | "resume" => {
                    let (app, pause) = (app.clone(), event.id.as_ref() == "pause");
                    tauri::async_runtime::spawn(async move {
                        let floe = app.state::<Floe>();
                        let r = if pause {
                            floe.host.pause(None).await
                        } else {
                            floe.host.resume(None).await
                        };
                        if let Err(e) = r {
                            tracing::warn!("{e}");
                        }
                    });
                }
                "quit" => quit(app),
                _ => {}
            })
            .build(app)?;
        Ok(())
    })();
    match built {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("no tray icon on this desktop ({e}); closing the window quits");
            false
        }
    }
}

/// Watch the engine: push its status to the window every second, keep the tray
/// icon and tooltip on the overall state, and notify when a folder needs attention.
pub(crate) fn watch_status(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        let mut shown: Option<Overall> = None;
        let mut told = Told::default();
        loop {
            let floe = app.state::<Floe>();
            match floe.host.status().await {
                Ok(view) => {
                    let _ = app.emit("status", &view);
                    if shown != Some(view.overall) {
                        set_tray(&app, &view);
                        shown = Some(view.overall);
                    }
                    for n in news(&view, &mut told) {
                        notify(&app, n.title, n.body);
                    }
                }
                Err(e) => {
                    let _ = app.emit("status-error", &e);
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

fn set_tray(app: &AppHandle, view: &StatusView) {
    if let Some(tray) = app.tray_by_id(TRAY) {
        if let Ok(img) = Image::from_bytes(tray_icon(view.overall)) {
            let _ = tray.set_icon(Some(img));
        }
        let n = view.folders.len();
        let _ = tray.set_tooltip(Some(format!("Floe: {} ({n} folder(s))", view.overall_label)));
    }
}

fn notify(app: &AppHandle, title: String, body: String) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!("cannot show a notification: {e}");
    }
}

/// The native folder picker; `None` when the user cancels.
pub(crate) async fn pick_folder(app: AppHandle) -> Result<Option<String>, ApiError> {
    tokio::task::spawn_blocking(move || {
        app.dialog().file().blocking_pick_folder().map(|p| p.to_string())
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

fn autostart_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!(
            "cannot change the start-at-login setting: {e}; check that ~/.config/autostart is writable"
        ),
    )
}

pub(crate) fn start_at_login(app: &AppHandle) -> Result<bool, ApiError> {
    app.autolaunch().is_enabled().map_err(autostart_err)
}

pub(crate) fn set_start_at_login(app: &AppHandle, enabled: bool) -> Result<bool, ApiError> {
    let a = app.autolaunch();
    let changed = if enabled { a.enable() } else { a.disable() };
    changed.map_err(autostart_err)?;
    a.is_enabled().map_err(autostart_err)
}

/// The UI drew its first folder list: the cold-start benchmark waits for this line
/// in `$FLOE_READY_FILE`.
pub(crate) fn ui_ready() {
    if let Some(path) = std::env::var_os("FLOE_READY_FILE") {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let _ = std::fs::write(path, format!("{ms}\n"));
    }
}
