#!/usr/bin/env python
"""Django's command-line utility for LuxOS."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxsite.settings")
    from django.core.management import execute_from_command_line

    from luxsite.embedded import ensure_services

    ensure_services()

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
