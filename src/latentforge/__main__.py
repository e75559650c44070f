import sys

from latentforge.cli.main import main

sys.exit(main())
