"""The staff web app: Jinja2 pages with htmx, on the engine. Mounted by suratdesa.web."""
