// Light/dark theme toggle. The inline script in base.html applies a saved choice before
// first paint; this module wires the button, saves new choices, and keeps aria-pressed
// ("dark theme on") in step with what is actually shown, including system changes.

const KEY = "theme";
const root = document.documentElement;
const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

function saved() {
  try {
    const value = localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : null;
  } catch {
    return null; // storage disabled: follow the system setting
  }
}

/** The theme on screen: the explicit choice, else the system's preference. */
export function currentTheme() {
  const explicit = root.dataset.theme;
  if (explicit === "light" || explicit === "dark") return explicit;
  return darkQuery.matches ? "dark" : "light";
}

export function setTheme(theme) {
  root.dataset.theme = theme;
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    // Not persisted; the choice still holds for this page.
  }
  sync();
}

function sync() {
  const dark = currentTheme() === "dark";
  for (const button of document.querySelectorAll("[data-theme-toggle]")) {
    button.setAttribute("aria-pressed", String(dark));
  }
}

const choice = saved();
if (choice && root.dataset.theme !== choice) root.dataset.theme = choice;

for (const button of document.querySelectorAll("[data-theme-toggle]")) {
  button.hidden = false;
  button.addEventListener("click", () => setTheme(currentTheme() === "dark" ? "light" : "dark"));
}
darkQuery.addEventListener("change", sync);
// Another tab changed the theme.
window.addEventListener("storage", (event) => {
  if (event.key !== KEY) return;
  if (event.newValue === "light" || event.newValue === "dark") root.dataset.theme = event.newValue;
  else delete root.dataset.theme;
  sync();
});
sync();
