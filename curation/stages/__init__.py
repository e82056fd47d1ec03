"""The pipeline's stages, one composite Beam transform each, with their logic in plain functions."""
