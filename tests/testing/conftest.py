"""Session-wide tiny-model cache for the test-kit tests (the kit's own pytest fixtures)."""

from megastyle.testing.fixtures import tiny_model, tiny_models_root

__all__ = ["tiny_model", "tiny_models_root"]
