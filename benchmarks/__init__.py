"""streamdump's benchmark: ``python -m benchmarks.run [--quick]`` (see README.md here)."""
