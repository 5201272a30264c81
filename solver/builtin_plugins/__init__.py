"""Plugins shipped with gpuplan, registered exactly like third-party ones (and blockable)."""
