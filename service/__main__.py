"""``python -m service`` — the same CLI as the ``remediator`` command."""

from service.cli import main

raise SystemExit(main())
