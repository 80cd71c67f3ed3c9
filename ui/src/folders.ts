// Folders: every sync folder with its live state, and the form to add one.
import {
  api,
  FloeError,
  type FolderView,
  type LoginField,
  type OnDrift,
  type RejectedFile,
  type StatusView,
} from "./api";
import { bytes, field, h, say, setText } from "./dom";

interface Card {
  root: HTMLElement;
  /** Where it syncs to: a schema drift may move it to a new branch or repository. */
  repo: HTMLElement;
  headline: HTMLElement;
  detail: HTMLElement;
  numbers: HTMLElement;
  commit: HTMLElement;
  verification: HTMLElement;
  problem: HTMLElement;
  /** Where the folder went on after a schema drift. */
  drift: HTMLElement;
  /** The last retention run. */
  retention: HTMLElement;
  toggle: HTMLButtonElement;
  /** Release and drop, shown while the validation gate holds files. */
  gate: HTMLElement;
  /** The files Floe could not sync, each with its reason and Ignore. */
  refused: HTMLElement;
}

const cards = new Map<string, Card>();
let list: HTMLElement;
let empty: HTMLElement;
let engineNote: HTMLElement;

export function mountFolders(root: HTMLElement): void {
  engineNote = h("p", { class: "muted", id: "engine-note" });
  list = h("div", { class: "cards", id: "folder-list", "aria-live": "off" });
  empty = h(
    "p",
    { class: "empty", id: "no-folders", hidden: true },
    "No sync folders yet. Add the folder your instrument writes into below.",
  );
  const bar = h(
    "div",
    { class: "row" },
    h("button", { type: "button", id: "pause-all", onclick: () => void all(true) }, "Pause all"),
    h("button", { type: "button", id: "resume-all", onclick: () => void all(false) }, "Resume all"),
  );
  root.append(
    h("h2", {}, "Sync folders"),
    engineNote,
    bar,
    list,
    empty,
    addForm(),
  );
}

async function all(pause: boolean): Promise<void> {
  try {
    await (pause ? api.pause(null) : api.resume(null));
  } catch (e) {
    alertError(e);
  }
}

function alertError(e: unknown): void {
  const msg = document.getElementById("folders-msg");
  if (msg) say(msg, "error", e instanceof FloeError ? e.message : String(e));
}

function card(f: FolderView): Card {
  const headline = h("p", { class: "headline" });
  const detail = h("p", { class: "detail" });
  const numbers = h("p", { class: "numbers" });
  const commit = h("p", { class: "commit muted" });
  const verification = h("p", { class: "verification muted" });
  const problem = h("p", { class: "problem" });
  const repo = h("p", { class: "repo muted" });
  const drift = h("p", { class: "drift", role: "note", hidden: true });
  const retention = h("p", { class: "retention muted", hidden: true });
  const toggle = h("button", { type: "button", class: "toggle" }) as HTMLButtonElement;
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      const paused = toggle.dataset.paused === "true";
      await (paused ? api.resume(f.path) : api.pause(f.path));
    } catch (e) {
      alertError(e);
    } finally {
      toggle.disabled = false;
    }
  });
  const gate = gateButtons(f.path);
  const refused = h("ul", { class: "refused", "aria-label": "Files that could not be synced", hidden: true });
  const remove = h("button", { type: "button", class: "remove" }, "Remove…") as HTMLButtonElement;
  remove.addEventListener("click", async () => {
    if (remove.dataset.armed !== "true") {
      remove.dataset.armed = "true";
      remove.textContent = "Click again to stop syncing this folder (its repository is kept)";
      return;
    }
    try {
      await api.removeFolder(f.path);
    } catch (e) {
      alertError(e);
    }
  });
  remove.addEventListener("blur", () => {
    remove.dataset.armed = "false";
    remove.textContent = "Remove…";
  });
  const root = h(
    "article",
    { class: "card", "data-path": f.path, "aria-label": `Sync folder ${f.path}` },
    h("h3", { class: "path" }, f.path),
    repo,
    headline,
    detail,
    numbers,
    commit,
    verification,
    drift,
    retention,
    problem,
    refused,
    gate,
    h("div", { class: "row" }, toggle, remove),
  );
  return { root, repo, headline, detail, numbers, commit, verification, problem, drift, retention, toggle, gate, refused };

}

/** Draw the refused files again only when they change (the status comes every second). */
function renderRefused(list: HTMLElement, path: string, files: RejectedFile[]): void {
  const key = JSON.stringify(files.map((r) => [r.file, r.ignored, r.message]));
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.hidden = files.length === 0;
  list.replaceChildren(
    ...files.map((r) => {
      const b = h(
        "button",
        {
          type: "button",
          class: "ignore",
          title: r.ignored
            ? "Count this file as needing attention again"
            : "Stop counting this file as needing attention (Floe still tries it)",
        },
        r.ignored ? "Count again" : "Ignore",
      ) as HTMLButtonElement;
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          await api.ignoreFile(path, r.file, r.ignored);
        } catch (e) {
          alertError(e);
        } finally {
          b.disabled = false;
        }
      });
      const since = `since ${r.since}`;
      return h(
        "li",
        { "data-file": r.file, "data-ignored": String(r.ignored) },
        h("span", { class: "why" }, r.message),
        h("span", { class: "muted" }, r.ignored ? ` (ignored; ${since})` : ` (${since})`),
        b,
      );
    }),
  );
}

/** The gate's two decisions for a folder's held files. */
function gateButtons(path: string): HTMLElement {
  const decide = async (button: HTMLButtonElement, release: boolean): Promise<void> => {
    button.disabled = true;
    try {
      const d = await api.gateDecide(path, release);
      const msg = document.getElementById("folders-msg");
      const what = release ? "Released" : "Dropped";
      if (msg) say(msg, "ok", `${what} ${d.files.length} file(s); ${d.branch} is at ${d.snapshot}.`);
    } catch (e) {
      alertError(e);
    } finally {
      button.disabled = false;
    }
  };
  const button = (release: boolean): HTMLButtonElement => {
    const [cls, title, label] = release
      ? ["gate-release", "Put the held files on the branch anyway", "Release held files"]
      : ["gate-drop", "Leave the held files out until they change", "Drop held files"];
    const b = h("button", { type: "button", class: cls, title }, label) as HTMLButtonElement;
    b.addEventListener("click", () => void decide(b, release));
    return b;
  };
  const [release, drop] = [button(true), button(false)];
  return h("div", { class: "row gate", hidden: true }, release, drop);
}

/** Set a data attribute only when it changes (no needless style work every tick). */
function setData(el: HTMLElement, key: string, value: string): void {
  if (el.dataset[key] !== value) el.dataset[key] = value;
}

/** Update the list in place: only text and attributes change while progress moves. */
export function renderFolders(s: StatusView): void {
  setText(
    engineNote,
    s.engine === "here"
      ? "Floe's engine runs inside this app."
      : "Showing the floe daemon that runs on this computer (the app controls it).",
  );
  const seen = new Set<string>();
  for (const f of s.folders) {
    seen.add(f.path);
    let c = cards.get(f.path);
    if (!c) {
      c = card(f);
      cards.set(f.path, c);
      list.append(c.root);
    }
    setData(c.root, "state", f.state);
    setText(c.repo, `→ ${f.repo} (branch ${f.branch})`);
    setText(c.headline, f.headline);
    setText(c.detail, f.detail);
    setText(
      c.numbers,
      `${f.files_pending} pending (${bytes(f.bytes_pending)}) · ${f.files_ingested} synced · ${(f.throughput / 1e6).toFixed(1)} MB/s`,
    );
    setText(c.commit, f.last_commit ? `Last commit ${f.last_commit}` : "No commit since start");
    setText(c.verification, f.verification ?? "");
    c.verification.hidden = !f.verification;
    setText(c.drift, f.drift ?? "");
    c.drift.hidden = !f.drift;
    setText(c.retention, f.retention ?? "");
    c.retention.hidden = !f.retention;
    setText(c.problem, f.problem ?? "");
    const role = f.needs_attention ? "alert" : "note";
    if (c.problem.getAttribute("role") !== role) c.problem.setAttribute("role", role);
    setData(c.problem, "attention", String(f.needs_attention));
    c.gate.hidden = f.held_files.length === 0;
    renderRefused(c.refused, f.path, f.rejected);
    setData(c.toggle, "paused", String(f.paused));
    setText(c.toggle, f.paused ? "Resume" : "Pause");
  }
  for (const [path, c] of cards) {
    if (!seen.has(path)) {
      c.root.remove();
      cards.delete(path);
    }
  }
  empty.hidden = s.folders.length > 0;
}

type Kind = "local" | "s3" | "az" | "gs";

function addForm(): HTMLElement {
  const msg = h("p", { id: "folders-msg", class: "msg", "data-kind": "none" });
  const [folderField, folder] = field(
    "Folder the instrument writes into",
    h("input", { id: "new-folder", required: true, autocomplete: "off" }),
  );
  const browse = h("button", { type: "button", id: "browse-folder" }, "Browse…");
  browse.addEventListener("click", async () => {
    try {
      const p = await api.pickFolder();
      if (p) folder.value = p;
    } catch (e) {
      say(msg, "error", e instanceof FloeError ? e.message : String(e));
    }
  });
  const kind = h(
    "select",
    { id: "dest-kind" },
    h("option", { value: "local" }, "A folder on this computer or a network drive"),
    h("option", { value: "s3" }, "Amazon S3 (or an S3-compatible server)"),
    h("option", { value: "az" }, "Azure Blob Storage"),
    h("option", { value: "gs" }, "Google Cloud Storage"),
  ) as HTMLSelectElement;
  const [kindField] = field("Where the data go", kind);
  const [whereField, where] = field(
    "Repository folder",
    h("input", { id: "dest-where", required: true, autocomplete: "off" }),
    "A new repository is created there on the first sync.",
  );
  const [prefixField, prefix] = field(
    "Path inside it",
    h("input", { id: "dest-prefix", autocomplete: "off", placeholder: "e.g. lab/ctd" }),
  );
  const login = h("fieldset", { id: "login", class: "login" });
  const [branchField, branch] = field("Branch", h("input", { id: "new-branch", value: "main" }));
  const [dimField, dim] = field(
    "Append along (optional)",
    h("input", { id: "new-dim", placeholder: "time" }),
    "Empty: the files' unlimited dimension.",
  );
  const live = h("input", { type: "checkbox", id: "new-live" }) as HTMLInputElement;
  const liveField = h(
    "div",
    { class: "field" },
    h("label", { for: "new-live" }, live, " Follow open logger files live"),
    h(
      "small",
      { id: "new-live-hint" },
      "NetCDF-3 files a logger keeps open: their records are synced every 30 s while it writes.",
    ),
  );
  live.setAttribute("aria-describedby", "new-live-hint");
  const readBack = h("input", { type: "checkbox", id: "new-verify-commit" }) as HTMLInputElement;
  const readBackField = h(
    "div",
    { class: "field" },
    h("label", { for: "new-verify-commit" }, readBack, " Read each commit back and compare it with the files"),
  );
  const gated = h("input", { type: "checkbox", id: "new-gate" }) as HTMLInputElement;
  const gateField = h(
    "div",
    { class: "field" },
    h(
      "label",
      { for: "new-gate" },
      gated,
      " Check each commit before it reaches the branch (schema, repeated times, valid ranges)",
    ),
  );
  const [driftField, onDrift] = field(
    "When a file's layout changes (a schema drift)",
    h(
      "select",
      { id: "new-on-drift" },
      h("option", { value: "stop" }, "Refuse that file and tell me"),
      h("option", { value: "branch" }, "Go on in a new branch of the repository"),
      h("option", { value: "repo" }, "Go on in a new repository beside this one"),
    ) as HTMLSelectElement,
    "A new variable, type or dimension cannot join what the repository holds; the data before it stays where it is.",
  );
  const [tagsField, tags] = field(
    "Tag the repository when these global attributes change (optional)",
    h("input", { id: "new-tag-on-change", placeholder: "firmware_version, calibration_date" }),
    "Comma-separated: a change starts a tagged settings period, so data from before and after it stay apart.",
  );
  const [keepField, keep] = field(
    "Keep history for (optional)",
    h("input", { id: "new-keep", placeholder: "90d" }),
    "Older snapshots expire and their data is deleted, between commits; empty: keep everything. No record is lost: only the versions before the latest go.",
  );
  const [everyField, every] = field(
    "Verify everything every … hours (optional)",
    h("input", { id: "new-verify-every", type: "number", min: "0", step: "any", placeholder: "24" }),
    "Compares every file with what the repository holds; empty: never.",
  );
  const submit = h("button", { type: "submit", id: "add-folder", class: "primary" }, "Test connection and add");

  const url = (): string => {
    const k = kind.value as Kind;
    const w = where.value.trim();
    const p = prefix.value.trim().replace(/^\/+/, "");
    if (k === "local") return w;
    return `${k}://${w}${p ? "/" + p : ""}`;
  };
  let fields: LoginField[] = [];
  const refresh = async (): Promise<void> => {
    const k = kind.value as Kind;
    const labels: Record<Kind, string> = {
      local: "Repository folder",
      s3: "Bucket",
      az: "Container",
      gs: "Bucket",
    };
    setText(whereField.querySelector("label")!, labels[k]);
    prefixField.hidden = k === "local";
    login.replaceChildren();
    if (k === "local") return;
    fields = await api.loginFields(`${k}://x`);
    login.append(h("legend", {}, "Login (kept in this computer's keychain, never in a file)"));
    for (const f of fields) {
      const input = h("input", {
        id: `login-${f.var}`,
        name: f.var,
        type: f.secret ? "password" : "text",
        autocomplete: "off",
        required: f.required,
      });
      login.append(field(f.label, input)[0]);
    }
  };
  kind.addEventListener("change", () => void refresh());

  const form = h(
    "form",
    { id: "add-form", class: "add", "aria-labelledby": "add-title" },
    h("h2", { id: "add-title" }, "Add a sync folder"),
    h("div", { class: "with-button" }, folderField, browse),
    kindField,
    whereField,
    prefixField,
    login,
    h("details", {}, h("summary", {}, "More settings"), branchField, dimField, liveField, readBackField, everyField, gateField, driftField, tagsField, keepField),
    h("div", { class: "row" }, submit),
    msg,
  );
  prefixField.hidden = true;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const creds: Record<string, string> = {};
    for (const f of fields) {
      const input = login.querySelector<HTMLInputElement>(`[name="${f.var}"]`);
      if (input && input.value.trim()) creds[f.var] = input.value.trim();
    }
    submit.disabled = true;
    say(msg, "busy", "Testing the connection…");
    try {
      const added = await api.addFolder({
        folder: folder.value.trim(),
        repo: url(),
        branch: branch.value.trim() || "main",
        group: "/",
        patterns: [],
        append_dims: dim.value.trim() ? [dim.value.trim()] : [],
        live_every_secs: live.checked ? 30 : null,
        verify_after_commit: readBack.checked,
        verify_every_hours: Number(every.value) > 0 ? Number(every.value) : null,
        gate: gated.checked ? { valid_range: true } : null,
        on_drift: onDrift.value as OnDrift,
        tag_on_change: tags.value
          .split(",")
          .map((t) => t.trim())
          .filter((t) => t),
        keep: keep.value.trim() || null,
        login: creds,
        check: true,
      });
      say(msg, "ok", `Added ${added.folder.path}: it syncs into ${added.folder.repo}.`);
      form.reset();
      login.querySelectorAll("input").forEach((i) => (i.value = ""));
      void refresh();
    } catch (err) {
      say(msg, "error", err instanceof FloeError ? err.message : String(err));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** A folder named when the app was started: in the add-folder form, ready to add. */
export function offerFolder(path: string): void {
  const input = document.getElementById("new-folder") as HTMLInputElement | null;
  if (!input) return;
  input.value = path;
  input.scrollIntoView({ block: "center" });
  input.focus();
  const msg = document.getElementById("folders-msg");
  if (msg) say(msg, "none", `Choose where the data of ${path} go, then add it.`);
}
