// Registers the service worker (installable app, offline page) and keeps a form from being
// sent twice on a slow connection. No inline script anywhere: the CSP allows only this origin.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/warga/sw.js", { scope: "/warga/" }).catch(() => {});
  });
}
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  const button = form.querySelector("button[type=submit], button:not([type])");
  if (button) {
    button.setAttribute("aria-busy", "true");
  }
});
