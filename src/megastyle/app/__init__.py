"""``megastyle app``: a web page for style transfer, style search and dataset exploration (``megastyle[app]``)."""
