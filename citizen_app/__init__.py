"""The citizen face: mobile-first pages under /warga/ where residents identify (NIK + No. KK +
date of birth), ask for the letter types a workflow opens to them, follow their request by its
tracking code and correct it when it is returned; installable as a Progressive Web App (web
manifest, icons, a service worker that keeps the shell and shows an offline page). Every rule is
the engine's (engine.citizens); these modules parse input, call it and render."""
