"""Benchmark decontamination: eval-set registry, n-gram index, detection and span removal."""
