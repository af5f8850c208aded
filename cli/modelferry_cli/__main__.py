import sys

from modelferry_cli.main import main

sys.exit(main())
