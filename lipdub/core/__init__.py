"""Shared mechanics below every stage: constants, landmark tables, metrics, files, model assets, audio resampling."""

VERSION = "0.1.0"
