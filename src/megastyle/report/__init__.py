"""Human-facing outputs: contact sheets and the HTML run report."""
