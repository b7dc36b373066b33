"""The stages of ``megastyle curate``, one module each, in the order the pipeline runs them."""
