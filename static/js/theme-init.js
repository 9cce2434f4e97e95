// Applies a saved theme choice before first paint: loaded as a classic, blocking script in
// <head> (not a module, which would run after parsing). Without a saved choice the CSS
// follows prefers-color-scheme. A file rather than an inline script so the CSP can forbid
// inline scripts altogether.
try {
  var saved = localStorage.getItem("theme");
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
} catch (e) {}
