"""The book itself: the build (papermill, then Jupyter Book), the Colab copies, the shared
figures and the Sphinx extension."""
