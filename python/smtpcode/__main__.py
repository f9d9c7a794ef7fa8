"""`smtpcode` / `python -m smtpcode`: the command line. The code lives in smtpcode.cli."""
import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
