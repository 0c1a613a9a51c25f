"""``python -m scheduler`` runs the scheduler process."""

from scheduler.main import main

main()
