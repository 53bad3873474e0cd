"""Evaluation: distribution distances and the measures of generators and methods."""
