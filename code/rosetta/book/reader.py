"""How the book reads an executed chapter: without the cell papermill added to run it.

papermill inserts a cell tagged ``injected-parameters`` (``# Parameters`` / ``quick = True``)
after the chapter's own ``parameters`` cell. That cell is how the build ran the chapter, not
part of the chapter, so it gets the ``remove-cell`` tag and is not rendered; the run's mode is
on the run report page. ``_config.yml`` makes :func:`read_executed` myst-nb's reader for
``.ipynb`` files (``nb_custom_formats``).
"""
import nbformat

INJECTED = "injected-parameters"


def read_executed(text: str) -> nbformat.NotebookNode:
    """The notebook in ``text``, with papermill's injected-parameters cell tagged ``remove-cell``."""
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if INJECTED in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    return nb
