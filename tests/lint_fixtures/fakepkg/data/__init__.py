"""Data modules."""

from .universal import Batch, RemoteTable, UniversalDataModule

__all__ = ["Batch", "RemoteTable", "UniversalDataModule"]
