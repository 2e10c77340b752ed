"""Segmentation: the Segment dock, its editing tools and the structures list."""
