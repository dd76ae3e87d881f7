"""Shared mechanics below every stage: constants, landmark tables, metrics, files, model assets."""

VERSION = "0.1.0"
