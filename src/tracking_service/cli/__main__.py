"""`python -m tracking_service.cli` runs the command line (as `tracking-service` does)."""

from tracking_service.cli import main

main()
