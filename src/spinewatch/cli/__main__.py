import sys

from spinewatch.cli import main

sys.exit(main())
