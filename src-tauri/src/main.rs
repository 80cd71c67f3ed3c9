//! Floe's desktop app: the same engine as `floe daemon` (or the running daemon's,
//! when there is one), in the tray, with Folders, History and Mounts screens.
//!
//! `commands` are one-line delegations into `floe_api`; `shell` holds what only a
//! desktop app does (tray, window, notifications, folder picker, start at login).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod shell;

use floe_api::engine::Host;
use floe_api::mounts::Mounts;
use tauri::{Manager, RunEvent, WindowEvent};

/// What every command reaches.
#[derive(Debug)]
pub struct Floe {
    host: Host,
    mounts: Mounts,
}

#[expect(
    clippy::exit,
    reason = "the app's exit status when it cannot start (no window to say it in)"
)]
fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,floe_engine=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("floe-desktop {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    // the engine runs on Floe's runtime (a bounded blocking pool), not Tauri's default
    let runtime = match floe_api::engine::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floe-desktop: cannot start: {e}");
            std::process::exit(floe_core::ErrorCode::Internal.exit_code());
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());
    let hidden = std::env::args().any(|a| a == "--hidden");
    let opts = match floe_api::engine::default_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floe-desktop: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let app = tauri::Builder::default()
        // first, so that a second start ends before it builds anything of its own
        // (a second engine, a second tray icon)
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            shell::second_start(app, &argv, &cwd);
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .manage(Floe { mounts: Mounts::new(opts.config.clone()), host: Host::new(opts) })
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::folders,
            commands::login_fields,
            commands::add_folder,
            commands::remove_folder,
            commands::pause,
            commands::resume,
            commands::ignore_file,
            commands::gate_decide,
            commands::commits,
            commands::variables,
            commands::series,
            commands::overview,
            commands::mounts,
            commands::mount,
            commands::unmount,
            commands::set_mount_at_login,
            commands::repos,
            commands::open_folder,
            commands::pick_folder,
            commands::start_at_login,
            commands::set_start_at_login,
            commands::ui_ready,
            commands::start_folder,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let has_tray = shell::tray(&handle);
            app.manage(HasTray(has_tray));
            shell::watch_status(handle.clone());
            shell::restore_mounts(&handle);
            if !hidden || !has_tray {
                shell::show_window(&handle);
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // with a tray, the window closes (its webview freed) and the engine keeps
            // syncing; the tray opens a new one. Without a tray, closing quits, or
            // nothing would be left to reopen it.
            if let WindowEvent::CloseRequested { api, .. } = event
                && !window.app_handle().state::<HasTray>().0
            {
                api.prevent_close();
                shell::quit(window.app_handle());
            }
        })
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|app, event| {
            // the last window closing is not the end: the tray keeps the engine
            // (Quit exits with a code, which goes through)
            if let RunEvent::ExitRequested { code: None, api, .. } = event
                && app.state::<HasTray>().0
            {
                api.prevent_exit();
            }
        }),
        Err(e) => {
            eprintln!("floe-desktop: cannot start the window: {e}");
            std::process::exit(floe_core::ErrorCode::Internal.exit_code());
        }
    }
}

/// Whether the desktop showed our tray icon.
#[derive(Debug)]
struct HasTray(bool);
