import sys

from sweeps.cli.commands import main

sys.exit(main())
