"""``python -m solver.cli``: the ``gpuplan`` command without its console script."""

from solver.cli import main

main()
