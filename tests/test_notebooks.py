"""The Colab copies in notebooks/ match the chapters they are generated from."""
import json

import pytest

from rosetta.book import colab, notebooks

from conftest import ROOT


def test_colab_notebooks_are_in_sync_with_the_sources():
    stale = notebooks.out_of_sync(ROOT)
    assert not stale, f"run `make notebooks`: these Colab copies do not match their chapters: {stale}"


def test_colab_copy_starts_with_a_setup_cell_that_is_inert_outside_colab():
    nb = json.loads(notebooks.generate(ROOT, "pytorch"))
    first = nb["cells"][0]
    assert first["metadata"]["tags"] == ["colab-setup"]
    ns = {}
    exec(first["source"], ns)            # outside Colab: clones nothing, changes nothing
    assert "google.colab" not in __import__("sys").modules
    assert nb["cells"][1]["source"].startswith("# PyTorch")
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and 'device = "auto"' in params[0]["source"]


# --------------------------------------- the NumPy-1 chapters' Colab path (rosetta.book.colab)

def test_numpy1_chapters_run_in_python311_on_colab(monkeypatch):
    """MXNet and Theano say so in their front matter; their first cell runs them through rosetta.book.colab
    on Colab and does nothing here, nor inside the Python 3.11 kernel it starts."""
    assert {n for n in ("pytorch", "tensorflow", "mxnet", "theano", "pytensor")
            if notebooks.colab_mode(ROOT, n) == "python311"} == {"mxnet", "theano"}
    for name in ("mxnet", "theano"):
        first = json.loads(notebooks.generate(ROOT, name))["cells"][0]
        assert f'colab.main("{name}", PARAMETERS)' in first["source"] and "ROSETTA_PY311" in first["source"]
        monkeypatch.delenv("ROSETTA_COLAB", raising=False)
        exec(first["source"], {})
        monkeypatch.setenv("ROSETTA_COLAB", "1")
        monkeypatch.setenv("ROSETTA_PY311", "1")      # the kernel inside the environment
        exec(first["source"], {})


def test_colab_mode_must_be_known_and_none_must_say_why(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "x.md").write_text("---\nrosetta:\n  colab: python2\n---\n# X\n")
    with pytest.raises(ValueError, match="rosetta.book.colab must be one of 'native', 'python311', 'none', got 'python2'"):
        notebooks.colab_mode(tmp_path, "x")
    (tmp_path / "chapters" / "x.md").write_text("---\nrosetta:\n  colab: none\n---\n# X\n")
    with pytest.raises(ValueError, match="colab_why does not say why"):
        notebooks.colab_mode(tmp_path, "x")


def test_chapters_that_cannot_run_on_colab_say_why_there_and_run_elsewhere(monkeypatch):
    none = {n for n in ("scaling", "comparison", "appendix_chainer", "appendix_cntk", "appendix_lasagne",
                        "appendix_keras", "status") if notebooks.colab_mode(ROOT, n) == "none"}
    assert none == {"scaling", "comparison", "appendix_chainer", "appendix_cntk"}
    first = json.loads(notebooks.generate(ROOT, "appendix_cntk"))["cells"][0]["source"]
    monkeypatch.delenv("ROSETTA_COLAB", raising=False)
    exec(first, {})                                   # outside Colab: nothing happens
    monkeypatch.setenv("ROSETTA_COLAB", "1")
    with pytest.raises(SystemExit, match="does not run on Colab: CNTK 2.7 needs Python 3.6"):
        exec(first, {})


def test_python311_environment_takes_the_books_pins(tmp_path):
    reqs = colab.requirements(ROOT)
    pins = dict(r.split("==") for r in reqs)
    assert pins["numpy"].startswith("1.") and set(pins) == set(colab.PACKAGES) | {"lasagne"}
    assert "torch" not in pins and "tensorflow-cpu" not in pins
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\nmxnet==1.9.1\n")
    with pytest.raises(colab.ColabError, match="pins no version of theano-pymc"):
        colab.requirements(tmp_path)
    with pytest.raises(colab.ColabError, match="is 'caffe' a chapter of the book"):
        colab.run_chapter("caffe", ROOT, tmp_path / "env", tmp_path / "out")
    assert not (tmp_path / "env").exists()


def _executed():
    """A small executed chapter as papermill and myst-nb leave it."""
    glue_out = lambda name, plain: {"output_type": "display_data", "data": {
        f"application/papermill.record/{k}": v for k, v in plain.items()},
        "metadata": {"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}}}
    return {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["colab-setup"]}, "source": "setup()", "outputs": []},
        {"cell_type": "markdown", "metadata": {}, "source": [
            "Accuracy {glue:text}`acc:.2f`% on {glue:text}`dev`, see {numref}`fig-x` and {doc}`pytorch`.\n\n",
            "```{glue:figure} fig\n:name: fig-x\n\nThe loss.\n```\n"]},
        {"cell_type": "code", "metadata": {}, "source": "print('hi')", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]},
        {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": "glue('acc', 98.7654)", "outputs": [
            glue_out("acc", {"text/plain": "98.7654"}), glue_out("dev", {"text/plain": "'cpu (AMD EPYC)'"}),
            glue_out("fig", {"text/plain": "<Figure>", "image/png": "iVBORw0KGgo=\n"})]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_glued_values_and_figures_are_filled_into_the_text():
    nb = _executed()
    values = colab.glued(nb)
    assert set(values) == {"acc", "dev", "fig"}
    text = colab.resolve("".join(nb["cells"][1]["source"]), values)
    assert text.startswith("Accuracy 98.77% on cpu (AMD EPYC), see fig-x and pytorch.")
    assert "![fig](data:image/png;base64,iVBORw0KGgo=)" in text and "*The loss.*" in text
    assert "{glue" not in text and "{numref}" not in text


def test_show_displays_text_and_outputs_but_not_the_setup_or_removed_cells(tmp_path, capsys, monkeypatch):
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(getattr(obj, "data", obj)))
    path = tmp_path / "x.executed.ipynb"
    path.write_text(json.dumps(_executed()))
    assert colab.show(path) == 2                      # the markdown cell and the printing cell
    assert capsys.readouterr().out == "hi\n"
    text = "\n".join(map(str, shown))
    assert "Accuracy 98.77%" in text and "print('hi')" in text
    assert "setup()" not in text and "glue('acc'" not in text and "<Figure>" not in text
