import sys

from framecast.cli import main

sys.exit(main())
