"""A Sphinx extension that keeps the book's pages free of network requests and script errors.

Jupyter Book 1 always loads sphinx-thebe, whose configuration script is added twice to every
page (a console error: 'THEBE_JS_URL has already been declared') and points at a CDN. The book
runs its code through papermill and Colab, not Thebe, so the Thebe scripts are dropped.

sphinx-book-theme also leaves the colour mode empty, which pydata-sphinx-theme's script reports
as a console error on every page ('Got invalid theme mode'); pages get 'auto' (follow the
reader's system setting), the theme's own fallback.
"""


def _is_thebe(script) -> bool:
    filename = str(getattr(script, "filename", "") or "")
    body = str(getattr(script, "attributes", {}).get("body", "") or "")
    return "thebe" in filename.lower() or "THEBE_JS_URL" in body


def drop_thebe(app, pagename, templatename, context, doctree):
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def setup(app):
    app.connect("html-page-context", drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
