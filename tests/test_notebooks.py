"""The Colab copies in notebooks/ match the chapters they are generated from."""
import json

from rosetta import notebooks

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
