// Floe's window: tabs, and the status that flows into every screen.
import "./style.css";
import { api, FloeError, onAddFolder, onStatus, onStatusError, type StatusView } from "./api";
import { setText } from "./dom";
import { mountFolders, offerFolder, renderFolders } from "./folders";
import { historyStatus, load as loadHistory, mountHistory } from "./history";
import { mountMounts, mountsStatus, refreshMounts } from "./mounts";
import { mountSettings, settingsStatus } from "./settings";

const overall = document.getElementById("overall")!;
const tabs = [...document.querySelectorAll<HTMLButtonElement>('[role="tab"]')];

function select(tab: HTMLButtonElement, focus = true): void {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute("aria-controls")!)!.hidden = !on;
  }
  if (focus) tab.focus();
  const id = tab.getAttribute("aria-controls");
  if (id === "history") void loadHistory();
  if (id === "mounts") void refreshMounts();
}

tabs.forEach((t, i) => {
  t.addEventListener("click", () => select(t));
  t.addEventListener("keydown", (e) => {
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    select(tabs[(next + tabs.length) % tabs.length]);
  });
});

mountFolders(document.getElementById("folders")!);
mountHistory(document.getElementById("history")!);
mountMounts(document.getElementById("mounts")!);
mountSettings(document.getElementById("settings")!);

function apply(s: StatusView): void {
  if (overall.dataset.state !== s.overall) overall.dataset.state = s.overall;
  setText(overall, s.overall_label);
  renderFolders(s);
  historyStatus(s);
  mountsStatus(s);
  settingsStatus(s);
}

let ready = false;
async function first(): Promise<void> {
  try {
    apply(await api.status());
  } catch (e) {
    overall.dataset.state = "attention";
    setText(overall, e instanceof FloeError ? e.message : String(e));
  }
  if (!ready) {
    ready = true;
    requestAnimationFrame(() => void api.uiReady());
  }
}

// a folder named on the command line (this start's, or a second start's)
function offer(folder: string): void {
  select(tabs.find((t) => t.getAttribute("aria-controls") === "folders")!, false);
  offerFolder(folder);
}
onAddFolder(offer);
void api.startFolder().then((f) => f && offer(f), () => {});

onStatus(apply);
onStatusError((e) => {
  overall.dataset.state = "attention";
  setText(overall, e.message);
});
void first();
