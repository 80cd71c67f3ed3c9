// Settings: start at login, and where the engine runs.
import { api, FloeError, type StatusView } from "./api";
import { h, say, setText } from "./dom";

let engine: HTMLElement;

export function mountSettings(root: HTMLElement): void {
  const msg = h("p", { id: "settings-msg", class: "msg", "data-kind": "none" });
  const box = h("input", { type: "checkbox", id: "start-at-login" }) as HTMLInputElement;
  box.addEventListener("change", async () => {
    try {
      box.checked = await api.setStartAtLogin(box.checked);
      say(msg, "ok", box.checked ? "Floe starts when you log in (in the tray)." : "Floe no longer starts at login.");
    } catch (e) {
      say(msg, "error", e instanceof FloeError ? e.message : String(e));
    }
  });
  void api.startAtLogin().then((v) => (box.checked = v)).catch(() => undefined);
  engine = h("p", { id: "engine-where" });
  root.append(
    h("h2", {}, "Settings"),
    h("div", { class: "check" }, box, h("label", { for: "start-at-login" }, "Start Floe when I log in")),
    msg,
    h("h3", {}, "Engine"),
    engine,
    h(
      "p",
      { class: "muted" },
      "Closing the window keeps Floe syncing in the tray. On a server without a desktop, run `floe daemon` (or enable the systemd user unit: systemctl --user enable --now floe).",
    ),
  );
}

export function settingsStatus(s: StatusView): void {
  setText(
    engine,
    s.engine === "here"
      ? "The sync engine runs inside this app; `floe status` shows the same folders."
      : "A separate `floe daemon` runs on this computer; this app shows and controls it.",
  );
}
