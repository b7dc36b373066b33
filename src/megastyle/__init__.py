"""megastyle: the MegaStyle recipe end to end — curate style datasets, train and use style encoders,
benchmark style retrieval and transfer, and transfer style with MegaStyle-FLUX."""

from megastyle import _moved

__version__ = "0.1.0"

_moved.install()  # old import paths of reorganised modules keep working, with a warning
