// Mounts: mount a repository (or a prefix holding many) at a folder, see every
// Floe mount with the process serving it (mounts live in processes of their own:
// closing or quitting the app leaves them mounted), keep one for every login,
// browse the repositories under a mounted prefix, open, unmount.
import { api, FloeError, type MountView, type ReposView, type StatusView } from "./api";
import { field, h, say } from "./dom";

let list: HTMLElement;
let msg: HTMLElement;
let repos: HTMLDataListElement;

export function mountMounts(root: HTMLElement): void {
  msg = h("p", { id: "mounts-msg", class: "msg", "data-kind": "none" });
  repos = h("datalist", { id: "mount-repos" }) as HTMLDataListElement;
  const [repoField, repo] = field(
    "Repository, or a prefix holding many",
    h("input", { id: "mount-repo", list: "mount-repos", required: true, autocomplete: "off" }),
  );
  const [mpField, mp] = field(
    "Mount at (an empty folder)",
    h("input", { id: "mount-at", required: true, autocomplete: "off" }),
    "Its branches/, tags/, snapshots/ and by-time/ folders open in any Zarr reader; a prefix shows a folder per repository.",
  );
  const browse = h("button", { type: "button", id: "mount-browse" }, "Browse…");
  browse.addEventListener("click", async () => {
    const p = await api.pickFolder().catch(() => null);
    if (p) mp.value = p;
  });
  const atLogin = h("input", { type: "checkbox", id: "mount-at-login" }) as HTMLInputElement;
  const atLoginField = h(
    "div",
    { class: "field" },
    h("label", { for: "mount-at-login" }, atLogin, " Mount again at every login"),
    h("small", {}, "The mount stays when you close or quit Floe; this brings it back after a restart too."),
  );
  const submit = h("button", { type: "submit", id: "mount-go", class: "primary" }, "Mount");
  const form = h(
    "form",
    { id: "mount-form", class: "add" },
    repoField,
    h("div", { class: "with-button" }, mpField, browse),
    atLoginField,
    h("div", { class: "row" }, submit),
    msg,
    repos,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    say(msg, "busy", "Mounting…");
    try {
      const m = await api.mount(repo.value.trim(), mp.value.trim(), atLogin.checked);
      say(msg, "ok", `Mounted ${m.repo} at ${m.mountpoint}${m.at_login ? " (and at every login)" : ""}`);
      await refreshMounts();
    } catch (err) {
      say(msg, "error", err instanceof FloeError ? err.message : String(err));
    } finally {
      submit.disabled = false;
    }
  });
  list = h("ul", { id: "mount-list", class: "mounts" });
  root.append(h("h2", {}, "Mounted repositories"), list, h("h2", {}, "Mount a repository"), form);
}

function item(m: MountView): HTMLElement {
  const open = h("button", { type: "button", class: "open" }, "Open in file manager");
  open.addEventListener("click", () =>
    api.openFolder(m.mountpoint).catch((e: FloeError) => say(msg, "error", e.message)),
  );
  const un = h("button", { type: "button", class: "unmount" }, m.state === "not_mounted" ? "Forget" : "Unmount");
  const login = h("input", { type: "checkbox", class: "at-login" }) as HTMLInputElement;
  login.checked = m.at_login;
  login.addEventListener("change", async () => {
    try {
      const v = await api.setMountAtLogin(m.mountpoint, login.checked);
      say(msg, "ok", v.at_login ? `${v.mountpoint} is mounted at every login` : `${v.mountpoint} is no longer mounted at login`);
    } catch (e) {
      say(msg, "error", e instanceof FloeError ? e.message : String(e));
    }
    await refreshMounts();
  });
  un.addEventListener("click", async () => {
    try {
      await api.unmount(m.mountpoint);
      say(msg, "ok", `Unmounted ${m.mountpoint}${m.at_login ? "; it is no longer mounted at login" : ""}`);
    } catch (e) {
      say(msg, "error", e instanceof FloeError ? e.message : String(e));
    }
    await refreshMounts();
  });
  const found = h("ul", { class: "repos", hidden: true });
  const browse = h("button", { type: "button", class: "browse" }, "Repositories");
  browse.addEventListener("click", async () => {
    if (!found.hidden) {
      found.hidden = true;
      return;
    }
    browse.disabled = true;
    found.replaceChildren(h("li", { class: "muted" }, "Looking for repositories…"));
    found.hidden = false;
    try {
      found.replaceChildren(...repoItems(m, await api.repos(m.repo)));
    } catch (e) {
      found.replaceChildren(h("li", { class: "error" }, e instanceof FloeError ? e.message : String(e)));
    } finally {
      browse.disabled = false;
    }
  });
  const process = m.pid === null ? "" : `, process ${m.pid}${m.program ? ` (${m.program})` : ""}`;
  const since = m.since ? ` since ${m.since.replace("T", " ").replace("Z", " UTC")}` : "";
  const live = m.state === "mounted";
  return h(
    "li",
    { "data-mountpoint": m.mountpoint, "data-state": m.state, "data-pid": m.pid === null ? "" : String(m.pid) },
    h("strong", {}, m.mountpoint),
    h("span", { class: "muted" }, ` ← ${m.repo}`),
    h("span", { class: live ? "state" : "state error" }, ` ${m.state_label}${process}${since}`),
    h(
      "span",
      { class: "row" },
      ...(live ? [browse, open] : []),
      un,
      h("label", { class: "check" }, login, " At login"),
    ),
    found,
  );
}

/** The repositories under a mounted prefix, newest first, each opening its folder. */
function repoItems(m: MountView, r: ReposView): HTMLElement[] {
  const items = r.repositories.map((s) => {
    const at = s.path ? `${m.mountpoint}/${s.path}` : m.mountpoint;
    const go = h("button", { type: "button", class: "open" }, "Open");
    go.addEventListener("click", () =>
      api.openFolder(at).catch((e: FloeError) => say(msg, "error", e.message)),
    );
    const when = s.latest_commit ? new Date(s.latest_commit).toISOString().slice(0, 19).replace("T", " ") : "";
    const what = s.error
      ? h("span", { class: "error" }, ` cannot be read: ${s.error}`)
      : h("span", { class: "muted" }, ` ${s.branches} branch${s.branches === 1 ? "" : "es"}, last commit ${when} UTC`);
    return h("li", { "data-repo": s.path }, h("code", {}, s.path || "(this repository)"), what, go);
  });
  for (const u of r.unlisted) {
    items.push(h("li", { class: "error" }, `${u.prefix}: cannot be listed: ${u.error}`));
  }
  return items.length ? items : [h("li", { class: "empty" }, "No repository under this prefix.")];
}

export async function refreshMounts(): Promise<void> {
  try {
    const ms = await api.mounts();
    list.replaceChildren(
      ...(ms.length ? ms.map(item) : [h("li", { class: "empty" }, "Nothing is mounted.")]),
    );
  } catch (e) {
    say(msg, "error", e instanceof FloeError ? e.message : String(e));
  }
}

export function mountsStatus(s: StatusView): void {
  const want = [...new Set(s.folders.map((f) => f.repo))];
  if (want.join("\n") !== [...repos.options].map((o) => o.value).join("\n")) {
    repos.replaceChildren(...want.map((r) => h("option", { value: r })));
  }
}
