"""Part 3: benchmarks — style retrieval, dataset consistency and diversity, style-transfer metrics."""
